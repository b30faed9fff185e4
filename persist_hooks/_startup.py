"""Run by ``persist_hooks_hook.pth`` at interpreter start-up: put the finder on ``sys.meta_path``.

Installs persist_hooks' DataSet finder (:func:`persist_hooks.importer.install`) unless the
environment variable ``PERSIST_HOOKS_NO_HOOK`` is set to anything but ``""`` or ``"0"``.
It runs in every interpreter of the environment, so it imports only
:mod:`persist_hooks.importer`, which itself imports nothing that start-up has not loaded
already, and it never lets an error escape (a broken hook must not break ``python``):
a failure is reported on one line of ``stderr``.

Example (a shell)::

    $ python -c "import sys; print([type(f).__name__ for f in sys.meta_path])"
    [..., 'DataSetFinder', 'type']
    $ PERSIST_HOOKS_NO_HOOK=1 python -c "import persist_hooks.importer as i; print(i.is_installed())"
    False
"""

import os


def _main() -> None:
    if os.environ.get("PERSIST_HOOKS_NO_HOOK", "") not in ("", "0"):
        return
    try:
        from persist_hooks.importer import install

        install(warn=False)
    except Exception as exc:  # start-up must survive a broken installation
        import sys

        sys.stderr.write(
            f"persist_hooks: import hook not installed ({type(exc).__name__}: {exc}); "
            "set PERSIST_HOOKS_NO_HOOK=1 to skip it\n"
        )


_main()
