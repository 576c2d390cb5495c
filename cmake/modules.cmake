# Modules above onnx/, in dependency order. A new module is one line here.
aim_module(graph aim_onnx)
aim_module(ops aim_graph)
aim_module(runtime aim_ops)
set(AIM_CLI_EXTRA_LIBS aim_runtime)
