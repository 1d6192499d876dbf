"""The bundled policies (installed as the package ``plugin.bundled_policies``); see plugin/bundled.py."""
