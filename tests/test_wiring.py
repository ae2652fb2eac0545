"""Wiring the import graph cannot check by itself: every job the code enqueues or schedules, and
every Stripe event handler, resolves to a function; route marks are read from views of any shape."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from flask.views import MethodView

from marketplace.http import route_facts
from marketplace.jobs import job_name, resolve

REPO = Path(__file__).resolve().parent.parent
# Source that enqueues jobs. marketplace/jobs.py is the machinery: its one call enqueues from the
# schedule, whose jobs are checked on their own.
ENQUEUEING_SOURCE = [p for d in ("marketplace", "workers", "bench") for p in sorted((REPO / d).rglob("*.py"))
                     if p != REPO / "marketplace" / "jobs.py"]


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _imported_names(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name → dotted name, from every import in the module (function-level ones too) and
    its own top-level functions."""
    names = {node.name: f"{module}.{node.name}" for node in tree.body
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
    return names


def _dotted(expr: ast.expr, names: dict[str, str]) -> str | None:
    """The dotted name of the function an expression names; None for a string or anything else
    (a job is handed over as the function itself, so the import graph shows it)."""
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _dotted(expr.value, names)
        return f"{base}.{expr.attr}" if base else None
    return None


def enqueued_jobs() -> list[tuple[str, int, str | None]]:
    """(file, line, the job's dotted name or None when the source does not say) per enqueue(...) call."""
    found = []
    for path in ENQUEUEING_SOURCE:
        tree = ast.parse(path.read_text(), str(path))
        names = _imported_names(tree, _module_name(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and (
                    (isinstance(node.func, ast.Name) and node.func.id == "enqueue")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "enqueue")):
                found.append((str(path.relative_to(REPO)), node.lineno, _dotted(node.args[0], names)))
    return found


def _is_job(func, where: str) -> None:
    assert callable(func), where
    assert func.__module__.startswith("workers."), f"{where}: {job_name(func)} is not a job in workers/"
    # What an RQ worker does with the name stored in Redis gives the same function back.
    assert resolve(job_name(func)) is func, where


def test_every_periodic_job_is_a_function_in_workers():
    from workers.schedule import PERIODIC

    assert PERIODIC
    assert len({p.name for p in PERIODIC}) == len(PERIODIC), "names make the scheduler's slot keys"
    for periodic in PERIODIC:
        _is_job(periodic.func, periodic.name)
        assert isinstance(periodic.every_seconds, int) and periodic.every_seconds > 0, periodic.name


def test_every_enqueued_job_is_a_function_in_workers():
    calls = enqueued_jobs()
    assert len(calls) >= 5, calls  # the walk finds the calls it is meant to check
    for file, line, name in calls:
        where = f"{file}:{line}"
        assert name is not None, f"{where}: enqueue the job function itself, not a name for it"
        _is_job(resolve(name), where)


def test_every_stripe_event_type_maps_to_a_handler(app):
    from marketplace.stripe_events import HANDLERS

    assert app.extensions["stripe_events"] is HANDLERS
    for event_type, handler in HANDLERS.items():
        assert "." in event_type and event_type == event_type.strip(), event_type
        assert callable(handler) and inspect.signature(handler).parameters, event_type


def test_payments_does_not_import_the_domains_that_act_on_its_events():
    for path in sorted((REPO / "marketplace" / "payments").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom | ast.Import):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(m.startswith(("marketplace.payouts", "marketplace.briefs", "marketplace.stripe_events"))
                               for m in modules), \
                    f"{path.relative_to(REPO)}:{node.lineno}"


def test_route_marks_are_read_from_functions_methods_and_method_view_classes():
    @route_facts.calls_stripe
    def view():
        pass

    class Resource(MethodView):
        @route_facts.rate_limited
        def post(self):
            pass

        def get(self):
            pass

    @route_facts.ignores_idempotency_key
    class Hook(MethodView):
        def post(self):
            pass

    assert route_facts.facts_of(view, "POST") == {route_facts.CALLS_STRIPE}
    resource = Resource.as_view("resource")
    assert route_facts.facts_of(resource, "POST") == {route_facts.RATE_LIMITED}
    assert route_facts.facts_of(resource, "GET") == set()
    assert route_facts.facts_of(Hook.as_view("hook"), "POST") == {route_facts.IGNORES_IDEMPOTENCY_KEY}
    assert route_facts.facts_of(None, "POST") == set()


def test_each_route_mark_is_on_the_views_that_have_it(app):
    marked: dict[str, set[tuple[str, str]]] = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for fact in route_facts.facts_of(app.view_functions[rule.endpoint], method):
                marked.setdefault(fact, set()).add((rule.endpoint, method))
    assert marked == {
        route_facts.CALLS_STRIPE: {("briefs.fund", "POST"), ("payouts.MyPayoutAccount", "POST"), ("cases.retry_case", "POST")},
        route_facts.RATE_LIMITED: {("tasks.claim_task", "POST"), ("proofs.submit_proof", "POST"),
                                   ("accounts.sign_up_brand", "POST"), ("accounts.sign_up_worker", "POST"),
                                   ("accounts.issue_token", "POST")},
        route_facts.IGNORES_IDEMPOTENCY_KEY: {
            ("accounts.sign_up_brand", "POST"), ("accounts.sign_up_worker", "POST"),
            ("accounts.issue_token", "POST"), ("accounts.create_api_key", "POST"), ("accounts.roll_api_key", "POST"),
            ("stripe_webhooks.stripe_webhook", "POST"),
            ("stripe_webhooks.stripe_connect_webhook", "POST")},
        route_facts.ACCEPTS_UPLOAD: {("proofs.submit_proof", "POST")},
        route_facts.SHOWS_SECRET: {
            ("accounts.sign_up_brand", "POST"), ("accounts.issue_token", "POST"), ("accounts.create_api_key", "POST"),
            ("accounts.roll_api_key", "POST"), ("webhooks.create_endpoint", "POST"), ("webhooks.rotate_secret", "POST"),
            ("briefs.fund", "POST")},
    }


def test_the_application_package_never_imports_the_job_layer_below_its_wiring():
    """workers/ imports marketplace's services; a service importing a job back would be an import
    circle. Only the wiring (routes, the Stripe event map, the CLI) hands work to the job layer."""
    wiring = ("routes.py", "stripe_events.py", "cli.py")
    for path in sorted((REPO / "marketplace").rglob("*.py")):
        if path.name in wiring:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom | ast.Import):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(m == "workers" or m.startswith("workers.") for m in modules), \
                    f"{path.relative_to(REPO)}:{node.lineno}"
