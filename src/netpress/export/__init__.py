"""Export to deployable forms (ONNX) and runners for runtimes (ONNX Runtime, OpenVINO)."""
