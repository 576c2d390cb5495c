# Makefile: a thin wrapper over CMake and ctest, so that the everyday commands are short.
#
#   make               configure and build build/ (RelWithDebInfo): the `aim` binary, tests
#   make test          everything: [1/3] build/'s ctest (all but targets), [2/3] build-asan/
#                      (ASan+UBSan) unit tests, [3/3] build-fuzz/ (clang, libFuzzer) each fuzz
#                      target for FUZZ_SECONDS; stops at the first failing stage
#   make targets       the issue targets not met yet (tests/targets: int8 accuracy), with figures
#   make fuzz          [3/3] alone (FUZZ_SECONDS=600 make fuzz for a longer run)
#   make format        clang-format -i on every C file of the project
#   make format-check  fails if clang-format would change a file
#   make clean         removes the three build folders
JOBS ?= 2
FUZZ_SECONDS ?= 60
BUILD_TYPE ?= RelWithDebInfo
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

FORMAT_FILES = $(shell git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null || \
                       find src include tests -name '*.[ch]')

export FUZZ_SECONDS
MAKEFLAGS += --no-print-directory
export ASAN_OPTIONS ?= abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

.PHONY: all build test test-main test-asan fuzz targets format format-check clean

all: build

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	cmake --build build -j$(JOBS)

test:
	@set -e; t0=$$(date +%s); \
	echo "==== make test [1/3]: build/, all tests ===="; \
	$(MAKE) --no-print-directory test-main; t1=$$(date +%s); \
	echo "==== make test [2/3]: build-asan/ (AddressSanitizer + UBSan), unit tests ===="; \
	$(MAKE) --no-print-directory test-asan; t2=$$(date +%s); \
	echo "==== make test [3/3]: build-fuzz/ (libFuzzer), each target for $(FUZZ_SECONDS) s ===="; \
	echo "==== so far: [1/3] passed in $$((t1 - t0)) s, [2/3] passed in $$((t2 - t1)) s ===="; \
	$(MAKE) --no-print-directory fuzz

test-main: build
	cd build && ctest $(CTEST_FLAGS) -LE targets

test-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAIM_SANITIZE=ON >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest $(CTEST_FLAGS) -L unit

fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIM_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j$(JOBS) --target fuzz_targets
	cd build-fuzz && ctest $(CTEST_FLAGS) -L fuzz

targets: build
	cd build && ctest --output-on-failure -L targets

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-fuzz
