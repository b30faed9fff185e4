"""Write the hostile corpus: one archive per file, first line ``# expect: <regex>``.

Run ``python tests/hostile/_generate.py`` after editing the table; the ``.archive``
files are committed so a reviewer can read each attack as it is.  ``# runtime-only``
marks attacks that only evaluation can refuse (they depend on values, not syntax).
"""

import pathlib

out = pathlib.Path(__file__).resolve().parent
for f in out.glob("*.archive"):
    f.unlink()
R = "  # runtime"  # refused only when evaluating (check() cannot know the values)
deep_list_names = "\n".join(
    ["a = [" + ", ".join(str(i) for i in range(100)) + "]",
     "b = [" + ", ".join(["a"] * 100) + "]",
     "c = [" + ", ".join(["b"] * 100) + "]",
     "from numpy import array",
     "x = array(c)"])
cases = {
 # -- code execution
 "exec_import_os": ("import of 'os'", "import os\nos.system('touch /tmp/persist_hooks_pwned')\n"),
 "exec_from_os_system": ("import of 'os.system'", "from os import system\nx = system('touch /tmp/persist_hooks_pwned')\n"),
 "exec_os_system_as_float": ("import of 'os.system'", "from os import system as float\nx = float('touch /tmp/persist_hooks_pwned')\n"),
 "exec_dunder_import": ("name '__import__'", "x = __import__('os').system('touch /tmp/persist_hooks_pwned')\n"),
 # the one __import__ the emitter writes (a NaN payload) is accepted in exactly its shape
 "exec_struct_unpack_other_module": ("name '__import__'", "x = __import__('os').unpack('<d', b'\\x01\\x00\\x00\\x00\\x00\\x00\\xf8\\x7f')[0]\n"),
 "exec_struct_unpack_other_format": ("name '__import__'", "x = __import__('struct').unpack('<q', b'\\x01\\x00\\x00\\x00\\x00\\x00\\xf8\\x7f')[0]\n"),
 "exec_struct_unpack_huge": ("name '__import__'", "x = __import__('struct').unpack('<d', b'\\x00' * 8)[0]\n"),
 "exec_struct_other_attribute": ("name '__import__'", "x = __import__('struct').calcsize('<d')\n"),
 "exec_eval": ("name 'eval'", "x = eval('1')\n"),
 "exec_exec": ("name 'exec'", "x = exec('import os')\n"),
 "exec_compile": ("name 'compile'", "x = compile('1', 'f', 'eval')\n"),
 "exec_builtins_eval": ("import of 'builtins.eval'", "from builtins import eval\nx = eval('1')\n"),
 "exec_builtins_import": ("import of 'builtins.__import__'", "from builtins import __import__\nx = __import__('os')\n"),
 "exec_import_module": ("import of 'importlib.import_module'", "from importlib import import_module\nm = import_module('os')\n"),
 "exec_getattr": ("getattr", "x = getattr(float, 'mro')()\n"),
 "exec_builtins_getattr": ("import of 'builtins.getattr'", "from builtins import getattr\nx = getattr(float, 'mro')\n"),
 "exec_getattr_chain": ("getattr", "x = getattr(getattr(float, '__class__'), '__subclasses__')()\n"),
 "exec_subprocess": ("import of 'subprocess.run'", "from subprocess import run\nx = run(['id'])\n"),
 "exec_breakpoint": ("name 'breakpoint'", "x = breakpoint()\n"),
 "exec_print": ("name 'print'", "x = print('pwned')\n"),
 "exec_pickle": ("import of 'pickle.loads'", "from pickle import loads\nx = loads(b'cos\\nsystem\\n.')\n"),
 "exec_map_unbound_method": ("name 'map'", "from pathlib import Path\nx = list(map(Path.unlink, [Path('/tmp/x')]))\n"),
 "exec_method_of_allowed_class": ("'pathlib.Path.unlink'", "from pathlib import Path\nx = Path.unlink(Path('/tmp/persist_hooks_pwned'))\n"),
 "exec_re_match": ("call of", "from re import compile\nx = compile('(a+)+$').match('a' * 30 + 'b')\n"),
 "exec_str_method": ("attribute 'join'", "x = ', '.join(['a'])\n"),
 # -- attribute walks
 "walk_tuple_class": ("attribute '__class__'", "x = ().__class__\n"),
 "walk_subclasses": ("__subclasses__", "x = ().__class__.__bases__[0].__subclasses__()\n"),
 "walk_fraction_globals": ("attribute '__(init|globals)__'", "from fractions import Fraction\nx = Fraction.__init__.__globals__\n"),
 "walk_fraction_builtins_eval": ("__", "from fractions import Fraction\nx = Fraction.__init__.__globals__['__builtins__']['eval']('1')\n"),
 "walk_int_class": ("attribute '__class__'", "x = (1).__class__\n"),
 "walk_float_dict": ("attribute '__dict__'", "x = float.__dict__\n"),
 "walk_object_subclasses": ("'object.__subclasses__'", "x = object.__subclasses__()\n"),
 "walk_list_method_self": ("attribute '__self__'", "x = [1]\ny = x.extend.__self__\n"),
 "walk_arrays_class": ("_arrays", "x = _arrays['a'].__class__\n"),
 "walk_arrays_bare": ("'_arrays' other than", "x = _arrays\n"),
 "walk_enum_module": ("attribute '__module__'", "from datetime import timezone\nx = timezone.__module__\n"),
 "walk_nested_method": ("'datetime.timezone.fromutc'" + R, "from datetime import timezone\nx = timezone.fromutc\n"),
 # -- file access
 "file_open": ("name 'open'", "x = open('/etc/passwd').read()\n"),
 "file_io_open": ("import of 'io.open'", "from io import open\nx = open('/etc/passwd')\n"),
 "file_path_read_text": ("call of", "from pathlib import Path\nx = Path('/etc/passwd').read_text()\n"),
 "file_path_write_text": ("call of", "from pathlib import Path\nPath('/tmp/persist_hooks_pwned').write_text('x')\n"),
 "file_path_unlink": ("call of", "from pathlib import Path\nPath('/tmp/persist_hooks_pwned').unlink()\n"),
 "file_os_remove": ("import of 'os.remove'", "from os import remove\nremove('/tmp/persist_hooks_pwned')\n"),
 "file_shutil": ("import of 'shutil.rmtree'", "from shutil import rmtree\nrmtree('/tmp/nothing')\n"),
 # -- resource exhaustion
 "res_pow_tower": ("binary operator", "x = 10**10**10\n"),
 "res_str_mul": ("binary operator", "x = '*' * 10**9\n"),
 "res_list_mul": ("binary operator", "x = [0] * 10**9\n"),
 "res_list_range": ("resource limit" + R, "x = list(range(1000000000000))\n"),
 "res_frozenset_range": ("resource limit" + R, "x = frozenset(range(10000000000))\n"),
 "res_deque_range": ("resource limit" + R, "from collections import deque\nx = deque(range(10000000000))\n"),
 "res_bytearray_int": ("bytes/bytearray only from bytes" + R, "x = bytearray(10000000000)\n"),
 "res_bytes_int": ("bytes/bytearray only from bytes" + R, "x = bytes(10000000000)\n"),
 "res_extend_doubling": ("resource limit" + R, "x = [1, 2, 3, 4, 5, 6, 7, 8]\n" + "x.extend(x)\n" * 60),
 "res_deep_unary": ("nesting deeper|cannot be parsed", "x = " + "-" * 5000 + "1\n"),
 "res_deep_parens": ("syntax error|nesting|cannot be parsed", "x = " + "(" * 1000 + "1" + ")" * 1000 + "\n"),
 "res_deep_lists": ("syntax error|nesting|cannot be parsed", "x = " + "[" * 300 + "]" * 300 + "\n"),
 "res_huge_int": ("integer literal of", "x = 0x" + "f" * 200000 + "\n"),
 "res_numpy_empty": ("resource limit" + R, "from numpy import empty\nx = empty((1000000, 1000000), dtype=object)\n"),
 "res_numpy_itemsize": ("item size" + R, "from numpy import array\nx = array([1], dtype='U99999999')\n"),
 "res_numpy_void": ("resource limit" + R, "from numpy import void\nx = void(100000000000)\n"),
 "res_numpy_fromiter_count": ("resource limit" + R, "from numpy import fromiter\nx = fromiter([1], dtype=object, count=100000000000)\n"),
 "res_shared_amplification": ("resource limit" + R, deep_list_names + "\n"),
 # -- import tricks
 "imp_fullwidth_os": ("import of 'os.system'", "from \uff4f\uff53 import system\nx = system('id')\n"),
 "imp_fullwidth_eval": ("name 'eval'", "x = \uff45\uff56\uff41\uff4c('1')\n"),
 "imp_fullwidth_dunder": ("attribute '__init__'", "from fractions import Fraction\nx = Fraction.__\uff49\uff4e\uff49\uff54__\n"),
 "imp_compat_getattr": ("name 'getattr'", "x = \U0001d420etattr(float, 'mro')\n"),
 "imp_relative": ("relative import", "from . import secrets\n"),
 "imp_star": ("import of 'os.\\*'", "from os import *\n"),
 "imp_os_path_module": ("import of 'os.path'", "from os import path\nx = path\n"),
 "imp_plain_import": ("import of 'sys'", "import sys\nx = sys.modules\n"),
 "imp_sys_modules_mid": ("import of 'sys'", "import sys as _sys\n_sys.modules['json'] = 1\nx = 1\n"),
 "imp_sys_tail_extra": ("import of 'sys'", "x = 1\nimport sys as _sys\n_sys.modules[__name__] = x\n_sys.exit()\n"),
 "imp_sys_tail_other_key": ("import of 'sys'", "x = 1\nimport sys as _sys\nif globals().get(\"__spec__\") is not None:\n    _sys.modules['os'] = x\n"),
 "imp_assign_sys": ("assignment to '_sys'", "_sys = 1\n"),
 # -- language outside the emitter's
 "lang_lambda": ("lambda", "x = lambda: 0\n"),
 "lang_listcomp": ("comprehension", "x = [i for i in range(3)]\n"),
 "lang_dictcomp": ("comprehension", "x = {i: i for i in range(3)}\n"),
 "lang_genexp": ("generator expression", "x = list(i for i in range(3))\n"),
 "lang_fstring": ("f-string", "x = f'{1}'\n"),
 "lang_walrus": ("walrus", "x = (y := 1)\n"),
 "lang_for": ("statement For", "for i in range(3):\n    pass\n"),
 "lang_while": ("statement While", "while True:\n    pass\n"),
 "lang_with": ("statement With", "with open('x') as f:\n    pass\n"),
 "lang_try": ("statement Try", "try:\n    x = 1\nexcept Exception:\n    pass\n"),
 "lang_class": ("statement ClassDef", "class X:\n    pass\n"),
 "lang_ifexp": ("conditional expression", "x = 1 if 1 else 2\n"),
 "lang_compare": ("comparison", "x = 1 < 2\n"),
 "lang_boolop": ("boolean operator", "x = 1 and 2\n"),
 "lang_not": ("operator", "x = not 1\n"),
 "lang_augassign": ("statement AugAssign", "x = 1\nx += 1\n"),
 "lang_annassign": ("statement AnnAssign", "x: int = 1\n"),
 "lang_chained_assign": ("chained assignment", "x = y = 1\n"),
 "lang_tuple_target": ("assignment to", "x, y = 1, 2\n"),
 "lang_raise": ("statement Raise", "raise SystemExit\n"),
 "lang_assert": ("statement Assert", "assert False\n"),
 "lang_global": ("statement Global", "global x\n"),
 "lang_type_call": ("type\\(\\) only", "x = type('X', (), {})\n"),
 "lang_type_new": ("type.__new__|creating classes", "x = type.__new__(type, 'X', (), {})\n"),
 "lang_object_call": ("call of '(builtins.)?object'", "x = object()\n"),
 "lang_setattr_on_class": ("only on instances" + R, "x = 1\nobject.__setattr__(float, 'real', 1)\n"),
 "lang_new_metaclass": ("creating classes" + R, "from fractions import Fraction\nx = Fraction.__new__(type)\n"),
 "lang_subscript_call": ("subscript", "from fractions import Fraction\nd = {'f': Fraction}\nx = d['f'](1)\n"),
 "lang_call_of_call": ("call of", "from fractions import Fraction\nx = Fraction(1)(2)\n"),
 "lang_shadow_then_call": ("call of 'Fraction'", "from fractions import Fraction\nFraction = 1\nx = Fraction(1)\n"),
 "lang_del_builtin": ("del of 'float'", "del float\n"),
 "lang_del_builtins_dunder": ("del of '__builtins__'", "del __builtins__\n"),
 "lang_dunder_name": ("name '__builtins__'", "x = __builtins__\n"),
 "lang_dict_update_builtins": ("name '__builtins__'", "x = {}\nx.update(__builtins__)\n"),
 "lang_dunder_state_key": ("dunder" + R, "from types import SimpleNamespace\nx = SimpleNamespace()\nx.__dict__.update({'__class__': 1})\n"),
 # -- function bodies outside the scoped template form
 "def_import_os": ("import of 'os.system'", "def _f0():\n    from os import system\n    return system('id')\nx = _f0()\n"),
 "def_plain_import": ("statement Import", "def _f0():\n    import os\n    return 1\n"),
 "def_decorator": ("does not match the scoped template form", "@_f1\ndef _f0():\n    return 1\n"),
 "def_bad_name": ("does not match the scoped template form", "def evil():\n    return 1\n"),
 "def_defaults": ("does not match the scoped template form", "def _f0(a=1):\n    return a\n"),
 "def_varargs": ("does not match the scoped template form", "def _f0(*a):\n    return a\n"),
 "def_global": ("statement Global", "def _f0():\n    global x\n    x = 1\n"),
 "def_async": ("statement AsyncFunctionDef", "async def _f0():\n    return 1\n"),
 "def_yield": ("yield", "def _f0():\n    yield 1\n"),
 "def_recursion": ("name '_f0'|inside a function", "def _f0():\n    return _f0()\nx = _f0()\n"),
 "def_lambda_body": ("lambda", "def _f0():\n    return lambda: 1\n"),
 "def_nested_def": ("statement FunctionDef", "def _f0():\n    def _f1():\n        return 1\n    return 1\n"),
 "def_assign_function": ("functions are not values", "def _f0():\n    return 1\nx = _f0\n"),
}
for name, (expect, src) in sorted(cases.items()):
    runtime = expect.endswith(R)
    expect = expect[: -len(R)] if runtime else expect
    head = f"# expect: {expect}\n" + ("# runtime-only\n" if runtime else "")
    (out / f"{name}.archive").write_text(head + src, encoding="utf-8")
(out / "clean.archive").write_text(
    "# expect: nothing (a clean archive: must load)\n"
    "from fractions import Fraction\nfrom numpy import array\n"
    "def _f0(items):\n    from collections import OrderedDict\n    return OrderedDict(items)\n"
    "x = [1, -2.5, float('nan'), -float('inf'), Fraction(1, 3), array([1, 2], dtype='int64'), _f0({'a': 1})]\n"
    "y = {}\ny.update({'me': y})\ndel _f0, Fraction, array\n"
    "import sys as _sys\nif globals().get(\"__spec__\") is not None:  # imported: the module is the item\n    _sys.modules[__name__] = x\n",
    encoding="utf-8")
print(len(cases), "hostile archives written")
