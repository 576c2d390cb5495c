# Modules above onnx/, added as their folders gain code. Kept apart from CMakeLists.txt so that a
# new module is one line here and one in AIM_CLI_EXTRA_LIBS.
set(AIM_CLI_EXTRA_LIBS "")
