# Modules above onnx/, in dependency order. A new module is one line here.
pkg_check_modules(LIBPNG REQUIRED IMPORTED_TARGET libpng)
pkg_check_modules(LIBJPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive) # toolchain archives

aim_module(graph aim_onnx)
aim_module(ops aim_graph)
# cpu: fast fp32 kernels on oneDNN (Debian's libdnnl-dev, OpenMP threading; omp.h for the
# per-thread OpenMP thread count).
find_package(dnnl CONFIG REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
aim_module(cpu aim_ops DNNL::dnnl OpenMP::OpenMP_C)
# aim's own softmax, pooling and batch-norm loops are written for the vectoriser, which GCC's -O2 runs only
# in its cheapest mode (loops with a remainder are left scalar); clang vectorises them at -O2.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/cpu/softmax.c ${CMAKE_SOURCE_DIR}/src/cpu/pool.c ${CMAKE_SOURCE_DIR}/src/cpu/norm.c PROPERTIES
  COMPILE_OPTIONS "$<$<C_COMPILER_ID:GNU>:-ftree-loop-vectorize;-fvect-cost-model=dynamic>")
aim_module(runtime aim_ops aim_cpu)
aim_module(image aim_onnx PkgConfig::LIBPNG PkgConfig::LIBJPEG)
# quant: calibration statistics, scales, QDQ; compile: region, lowering, embedding (aim compile).
aim_module(quant aim_runtime aim_image)
aim_module(compile aim_quant aim_cpu PkgConfig::LIBARCHIVE)
target_compile_definitions(aim_compile PRIVATE AIM_VERSION_STRING="${PROJECT_VERSION}")
set(AIM_CLI_EXTRA_LIBS aim_runtime aim_image aim_quant aim_compile)
