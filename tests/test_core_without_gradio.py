"""core/ is the engine: it must import and work with gradio made unimportable."""
import subprocess
import sys
import textwrap

from tests.conftest import REPO


def test_core_imports_with_gradio_blocked():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "gradio" or name.startswith("gradio."):
                    raise ImportError("gradio is blocked in this test")
        sys.meta_path.insert(0, Block())
        import core
        for info in pkgutil.walk_packages(core.__path__, "core."):
            importlib.import_module(info.name)
        assert not any(m == "gradio" or m.startswith("gradio.") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
