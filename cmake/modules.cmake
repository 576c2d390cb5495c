# Modules above onnx/, in dependency order. A new module is one line here.
pkg_check_modules(LIBPNG REQUIRED IMPORTED_TARGET libpng)
pkg_check_modules(LIBJPEG REQUIRED IMPORTED_TARGET libjpeg)

aim_module(graph aim_onnx)
aim_module(ops aim_graph)
aim_module(runtime aim_ops)
aim_module(image aim_core PkgConfig::LIBPNG PkgConfig::LIBJPEG)
set(AIM_CLI_EXTRA_LIBS aim_runtime aim_image)
