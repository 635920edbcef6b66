"""Deployment: ONNX export of a network with its JSON sidecar, onnxruntime inference, offline and
streaming transcription of audio files (``asrdistill export``, ``asrdistill transcribe``)."""
