"""Reading plates and container codes from pictures with ONNX models run by our own code."""
