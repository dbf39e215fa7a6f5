"""Workflow code guarded as temporalio's sandbox guards it.

temporalio's worker runs workflow code in a sandbox by default: the workflow's
module is imported anew, and in that copy the nondeterministic parts of the
standard library (``datetime.datetime.now``, ``random.random``, ``time.time``,
``open``, threads, ``os``, ...) are proxies that raise
``RestrictedWorkflowAccessError``, which fails the workflow task. The embedded
worker uses the same machinery from ``temporalio.worker.workflow_sandbox``
(its importer, ``SandboxRestrictions`` and their matchers), so the same calls
are refused with the same messages, ``workflow.unsafe.sandbox_unrestricted()``
and ``imports_passed_through()`` work, and ``SandboxedWorkflowRunner(
restrictions=...)`` is honoured.

What differs is when the import happens. temporalio imports the workflow
module again for every run, which costs milliseconds a run; here each module
is imported once per process and set of restrictions, into one sandbox shared
by every workflow module guarded under those restrictions. A run then costs
nothing extra: workflow code calls the proxies its module holds, and only the
proxied names pay a check. The price: module-level state of workflow modules
is shared by the runs of a process (temporalio: fresh for each run), though
still apart from the application's own copy of those modules. Where
temporalio swaps ``open``, ``__import__`` and friends in ``builtins`` for the
whole thread while a workflow task runs, here the modules the sandbox executes
get builtins of their own with those swapped (so ``open`` reached through a
passed-through module is not refused), and ``workflow.unsafe.in_sandbox()``
stays False.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.machinery import BuiltinImporter, ExtensionFileLoader
from types import ModuleType
from typing import TYPE_CHECKING, Any

import temporalio.workflow

if TYPE_CHECKING:
    from temporalio.worker.workflow_sandbox import (
        SandboxedWorkflowRunner,
        SandboxMatcher,
        SandboxRestrictions,
    )
    from temporalio.worker.workflow_sandbox._importer import Importer
    from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext

__all__ = ["Sandbox", "sandbox_for"]


def sandbox_for(runner: object, *, debug: bool = False) -> Sandbox | None:
    """The sandbox workflow code runs in under temporalio's ``workflow_runner``
    option; None for ``UnsandboxedWorkflowRunner()``. In ``debug`` mode (the
    worker's ``debug_mode`` or ``TEMPORAL_DEBUG``), ``breakpoint()`` is allowed,
    as in temporalio.

    Raises:
        TypeError: A runner ablauf cannot honour: its own ``WorkflowRunner``
            subclass, or a ``SandboxedWorkflowRunner`` with another ``runner_class``.
    """
    # Imported here: only a worker that runs workflows needs the sandbox.
    from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    if runner is None:
        runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default)
    if type(runner) is UnsandboxedWorkflowRunner:
        return None
    if type(runner) is SandboxedWorkflowRunner:
        if runner.runner_class is not UnsandboxedWorkflowRunner:
            raise TypeError(
                "workflow_runner: SandboxedWorkflowRunner(runner_class=...) is not supported "
                "by ablauf's embedded worker, which runs workflow code on its own runtime"
            )
        restrictions = runner.restrictions
        if debug:
            restrictions = _for_debugger(runner)
        return Sandbox.of(restrictions)
    if isinstance(runner, WorkflowRunner):
        raise TypeError(
            f"workflow_runner: {type(runner).__name__} is not supported by ablauf's embedded "
            "worker, which runs workflow code on its own runtime; use "
            "SandboxedWorkflowRunner or UnsandboxedWorkflowRunner"
        )
    raise TypeError(
        f"workflow_runner must be a temporalio WorkflowRunner, not {type(runner).__name__}"
    )


def _for_debugger(runner: SandboxedWorkflowRunner) -> SandboxRestrictions:
    """The runner's restrictions as temporalio relaxes them in debug mode."""
    from temporalio.worker._debugger import _relax_sandbox_for_debugger

    original = runner.restrictions
    known = _DEBUG_RESTRICTIONS.get(id(original))
    if known is None:
        relaxed = _relax_sandbox_for_debugger(runner)
        assert isinstance(relaxed, type(runner))
        # A debugger's own modules (debugpy) must not be imported anew.
        known = original, relaxed.restrictions.with_passthrough_modules("_pydevd_bundle")
        _DEBUG_RESTRICTIONS[id(original)] = known
    return known[1]


# The same relaxed restrictions for the same restrictions, so their sandbox is
# made once; each entry keeps its original alive, so an id is never reused.
_DEBUG_RESTRICTIONS: dict[int, tuple[SandboxRestrictions, SandboxRestrictions]] = {}


class Sandbox:
    """The sandboxed copies of workflow modules under one set of restrictions."""

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        from temporalio.worker.workflow_sandbox._importer import Importer
        from temporalio.worker.workflow_sandbox._restrictions import (
            RestrictedModule,
            RestrictionContext,
        )

        self.restrictions = restrictions
        self.context = RestrictionContext()
        # The builtins of every module the sandbox executes: restricted ones
        # refuse their use, and imports inside workflow code go to the sandbox.
        namespace = dict(builtins.__dict__)
        namespace.update(_guarded_builtins(restrictions, self.context))
        namespace["__import__"] = self._import_at_run_time
        self.modules = _Modules(namespace, RestrictedModule)
        """The sandbox's ``sys.modules``, shared by the importers of all its workflow modules."""
        self.checked: set[str] = set()
        """Modules the importers have already restricted."""
        self._importer: Importer | None = None
        self._applied = Importer.current_importer

    @staticmethod
    def of(restrictions: SandboxRestrictions) -> Sandbox:
        """The process's sandbox for ``restrictions`` (made on first use)."""
        # Keyed by identity: restrictions hold sets, so they do not hash. The
        # sandbox keeps its restrictions alive, so an id is never reused.
        sandbox = _SANDBOXES.get(id(restrictions))
        if sandbox is None:
            sandbox = _SANDBOXES[id(restrictions)] = Sandbox(restrictions)
        return sandbox

    def workflows(self, workflows: Iterable[type]) -> list[type]:
        """The sandboxed copies of ``workflows`` (those defined with
        ``sandboxed=False`` as they are).

        Raises:
            RuntimeError: A workflow's module cannot be imported in the sandbox
                (worded as temporalio's worker words it).
        """
        copies = []
        for cls in workflows:
            defn = temporalio.workflow._Definition.must_from_class(cls)
            if not defn.sandboxed:
                copies.append(cls)
                continue
            try:
                copy = self._import(cls)
                temporalio.workflow._Definition.must_from_class(copy)
            except Exception as err:
                raise RuntimeError(f"Failed validating workflow {defn.name}") from err
            copies.append(copy)
        return copies

    def failure_types(self, types: Sequence[type[BaseException]]) -> list[type[BaseException]]:
        """``types`` and their sandboxed copies, which sandboxed workflow code raises."""
        found = list(types)
        host = sys.modules
        for typ in types:
            copy: Any = self.modules.get(typ.__module__)
            # Only modules the sandbox executed hold copies.
            if copy is None or copy is host.get(typ.__module__) or self.modules.is_proxy(copy):
                continue
            for part in typ.__qualname__.split("."):
                copy = getattr(copy, part, None)
            if isinstance(copy, type) and copy is not typ and issubclass(copy, BaseException):
                found.append(copy)
        return found

    def _import(self, cls: type) -> type:
        from temporalio.worker.workflow_sandbox._importer import Importer

        name = cls.__module__
        if name == "__main__":
            # As temporalio: the script is imported under another name, so its
            # top-level code guarded by `if __name__ == "__main__"` does not run.
            name = "__temporal_main__"
        importer = Importer(self.restrictions, self.context, workflow_module_name=name)
        if not self.modules:
            self.modules.update(importer.new_modules)
        importer.new_modules = self.modules
        importer.modules_checked_for_restrictions = self.checked
        self._importer = importer
        context = self.context
        unsafe = temporalio.workflow.unsafe
        # Import-time rules while the module loads, run-time rules ever after:
        # nothing but workflow code runs the sandboxed modules' code.
        context.is_runtime = context.in_activation = False
        unsafe._set_in_sandbox(True)
        try:
            with importer.applied():
                module = builtins.__import__(name, fromlist=(cls.__name__,))
        finally:
            unsafe._set_in_sandbox(False)
            context.is_runtime = context.in_activation = True
        copy = getattr(module, cls.__name__, None)
        if not isinstance(copy, type):
            raise ImportError(f"cannot import name {cls.__name__!r} from {name!r}")
        return copy

    def _import_at_run_time(
        self,
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> ModuleType:
        # While a workflow module loads, its importer is in place already.
        if self._applied() is not None or self._importer is None:
            return builtins.__import__(name, globals, locals, fromlist, level)
        with self._importer.applied():
            return builtins.__import__(name, globals, locals, fromlist, level)


class _Modules(dict[str, ModuleType]):
    """The sandbox's ``sys.modules``: a module the sandbox is about to execute
    gets the sandbox's builtins, which its functions then look names up in."""

    def __init__(self, namespace: dict[str, Any], proxy: type[ModuleType]) -> None:
        super().__init__()
        self.namespace = namespace
        self.proxy = proxy

    def __setitem__(self, name: str, module: ModuleType) -> None:
        # Only a module that never ran has no __builtins__ yet; those passed
        # through from the application (and restricted proxies of them) have.
        if not isinstance(module, self.proxy):
            namespace = getattr(module, "__dict__", None)
            if (
                isinstance(namespace, dict)
                and "__builtins__" not in namespace
                and not _is_native(module)
            ):
                namespace["__builtins__"] = self.namespace
        super().__setitem__(name, module)

    def is_proxy(self, module: object) -> bool:
        """Whether ``module`` is a restricted proxy of a module passed through."""
        return isinstance(module, self.proxy)


_SANDBOXES: dict[int, Sandbox] = {}


def _is_native(module: ModuleType) -> bool:
    """A module of compiled code (which may be the application's own object)."""
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    return isinstance(loader, ExtensionFileLoader) or loader is BuiltinImporter


def _guarded_builtins(
    restrictions: SandboxRestrictions, context: RestrictionContext
) -> dict[str, Callable[..., Any]]:
    """The restricted builtins, as the restrictions' ``__builtins__`` matcher names
    them, each refusing its use from workflow code."""
    from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError
    from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext

    matcher = restrictions.invalid_module_members.child_matcher("__builtins__")
    if matcher is None:
        return {}
    shadows: dict[str, Callable[..., Any]] = {}
    for name in dir(builtins):
        if name.startswith("_"):
            continue
        if name in matcher.access or name in matcher.use or name in matcher.children:
            shadows[name] = _guarded(
                name, getattr(builtins, name), matcher, context, RestrictedWorkflowAccessError
            )
    # Restricted classes are proxies; isinstance and issubclass see through them.
    unwrap = RestrictionContext.unwrap_if_proxied
    real_isinstance, real_issubclass = builtins.isinstance, builtins.issubclass

    def isinstance(obj: object, cls: Any, /) -> bool:
        return real_isinstance(unwrap(obj), unwrap(cls))

    def issubclass(cls: Any, classinfo: Any, /) -> bool:
        return real_issubclass(unwrap(cls), unwrap(classinfo))

    shadows["isinstance"] = isinstance
    shadows["issubclass"] = issubclass
    return shadows


def _guarded(
    name: str,
    original: Callable[..., Any],
    matcher: SandboxMatcher,
    context: RestrictionContext,
    error: type[Exception],
) -> Callable[..., Any]:
    child = matcher.children.get(name)
    message = child.leaf_message if child is not None else None
    unrestricted = temporalio.workflow.unsafe.is_sandbox_unrestricted

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if matcher.match_access(context, name, include_use=True) and not unrestricted():
            raise error(f"__builtins__.{name}", override_message=message)  # type: ignore[call-arg]
        return original(*args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = original.__doc__
    return guarded
