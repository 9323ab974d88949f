"""The HTTP process stays light: routes never import torch, OpenCV, ONNX Runtime or PDFium."""

from __future__ import annotations

import subprocess
import sys


def test_server_process_imports_no_model_libraries() -> None:
    code = (
        "import sys, ocrserve.cli, ocrserve.server.app\n"
        "import ocrserve.archives.store, ocrserve.archives.mar\n"
        "import ocrserve.archives.bundled as b\n"
        "b.ensure_bundled_store()\n"
        "bad = [n for n in ('torch', 'cv2', 'onnxruntime', 'pypdfium2') if n in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
