"""Inference speed: backends (eager, channels_last, fast, compile, onnxruntime) timed in interleaved rounds.

Above inference and export in the layering (it builds ONNX files to time them); used by `seglab benchmark`.
"""
