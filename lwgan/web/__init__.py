"""The local web page (`lwgan serve`): a Gradio front end that only calls the Python API (lwgan.tasks)."""
