"""The update methods: how a population's density is advanced over one time step.

``METHODS`` maps the name a network gives as ``update_method`` to its record, the way
scipy's ``solve_ivp`` keeps its ``METHODS``. Everything the Python side needs to know about
a method is here: which compiled kernel steps it, what ``tol`` means for it (the value of an
explicit ``tol: null`` and the loosest tolerance the solver ever stops at), and the advice
given when a step fails. docs/method.md §8 describes each method.

How to add an update method
---------------------------
1. Write its one-step kernel: a ``@njit`` function in a ``kernels_*.py`` module that
   advances ``x = p[o:o + n]`` with the population's operator (see kernels_taylor.py).
2. Give it a code in codes.py and one branch in ``propagate.run_members`` where the
   step functions are called (the only place the compiled loop looks at method codes).
3. Add a subclass of :class:`UpdateMethod` below and an entry in ``METHODS``.
tests/test_engine_methods.py then checks it like every other entry (mass conserved, batched
equals alone, refusal messages); network files, the model and sweeps accept the new name.
"""

from __future__ import annotations

from typing import ClassVar

from . import codes

# the failure texts every method shares
_COMMON_ADVICE = {
    codes.FAIL_NEGATIVE_TOTAL: "density lost all its mass (no positive entries left)",
    codes.FAIL_NONFINITE: "firing rate became non-finite (NaN or inf)",
}
_EXPLICIT_ADVICE = {
    codes.FAIL_MASS: ("probability mass not conserved (|sum(p) - 1| >= 1e-12): dt is too large or dv too "
                      "small for update_method {method!r}; use a smaller dt or update_method 'gmres'"),
    codes.FAIL_SERIES: ("update_method {method!r} cannot step this network: dt*||J|| is too large (the "
                        "Taylor series does not converge or the rates ran away); use a smaller dt or 'gmres'"),
}


class UpdateMethod:
    """One update method. Subclasses set the class attributes; instances are stateless.

    ``tol_fallback`` is what an explicit ``tol: null`` means (DiPDE's fallback values);
    ``tol_cap`` (or None) is the loosest tolerance the solver is run at: a larger ``tol`` is
    clamped to it. ``implicit`` methods solve a linear system per step (the kernel keeps the
    last step's solution to start from, and reuses it when the inputs repeat bit for bit);
    ``scaled_operator`` says whether the kernel wants the operator assembled as ``dt * J``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    tol_fallback: ClassVar[float] = 1e-12
    tol_cap: ClassVar[float | None] = None
    implicit: ClassVar[bool] = False
    advice: ClassVar[dict[int, str]] = _COMMON_ADVICE

    def kernel_code(self, approx_order: int | None) -> int:
        """The compiled kernel that steps a population with this method."""
        raise NotImplementedError

    def scaled_operator(self, approx_order: int | None) -> bool:
        return False

    def effective_tol(self, tol: float | None) -> float:
        """The tolerance the kernel is run at for a population's ``tol``."""
        tol = self.tol_fallback if tol is None else tol
        return tol if self.tol_cap is None else min(tol, self.tol_cap)

    def fail_reason(self, code: int) -> str:
        """The message for a failure code the kernel returned for a population of this method."""
        text = self.advice.get(code, _COMMON_ADVICE[codes.FAIL_NONFINITE])
        return text.format(method=self.name)

    def __repr__(self) -> str:
        return f"<update method {self.name!r}>"


class Approx(UpdateMethod):
    """Taylor series of expm(dt J) (docs/method.md §8.1-8.2): summed until the last term's
    ``norm`` is at most ``tol`` or, with ``approx_order = k``, truncated after k terms."""

    name = "approx"
    summary = "Taylor series of the matrix exponential (tolerance-controlled, or fixed order k)"
    advice = {**_COMMON_ADVICE, **_EXPLICIT_ADVICE}

    def kernel_code(self, approx_order):
        return codes.APPROX_TOL if approx_order is None else codes.APPROX_ORDER

    def scaled_operator(self, approx_order):
        return approx_order is None  # A = J*dt first, then the series (as DiPDE does)


class Exact(UpdateMethod):
    """expm(dt J) p (docs/method.md §8.3), here a Taylor series over substeps with
    ||dt J / s||_1 <= 1/2, each summed to full double precision; ``tol`` is not used."""

    name = "exact"
    summary = "matrix exponential, to double precision"
    advice = {**_COMMON_ADVICE, **_EXPLICIT_ADVICE}

    def kernel_code(self, approx_order):
        return codes.EXACT


class Gmres(UpdateMethod):
    """Backward Euler ``(I - dt J) p_new = p`` (docs/method.md §8.4). DiPDE solves it with
    GMRES at relative tolerance ``tol``; sweeper solves the same system directly when the
    operator's band is narrow (kernels_gmres.use_band) or Gauss-Seidel proves dearer
    (kernels_gmres.band_cap), else by Gauss-Seidel sweeps until a
    sweep changes the solution by at most ``min(tol, 1e-12) * ||p||_2``:
    a ``tol`` above 1e-12 (including the 1e-5 that ``tol: null`` means) is clamped, so
    sweeper's answer is the backward-Euler solution to about 1e-12 whatever ``tol`` says,
    and agrees with DiPDE's to about DiPDE's own solver error at that ``tol``."""

    name = "gmres"
    summary = "backward Euler, solved to min(tol, 1e-12) relative (DiPDE: GMRES at tol)"
    tol_fallback = 1e-5
    tol_cap = 1e-12
    implicit = True

    def kernel_code(self, approx_order):
        return codes.BACKWARD_EULER

    def scaled_operator(self, approx_order):
        return True


class _Table(dict):
    """A dict whose ``in`` answers False for any value that cannot be a name (lists,
    dicts from a parsed file), so that callers can test user input directly."""

    def __contains__(self, key) -> bool:
        try:
            return dict.__contains__(self, key)
        except TypeError:
            return False


METHODS: dict[str, UpdateMethod] = _Table((m.name, m) for m in (Approx(), Exact(), Gmres()))


def method_names() -> str:
    """The known names, for messages: ``approx, exact, gmres``."""
    return ", ".join(METHODS)
