"""Run by ``persist_hooks_hook.pth`` at interpreter start-up: put the finder on ``sys.meta_path``."""
