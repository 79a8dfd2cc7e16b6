"""Integer codes shared by the compiled kernels and the Python side (numba sees plain ints)."""

# kernel codes of the update methods (see methods.METHODS; approx has two kernels)
APPROX_TOL, APPROX_ORDER, BACKWARD_EULER, EXACT = 0, 1, 2, 3

# failure codes the kernel returns per member (texts: methods.UpdateMethod.fail_reason)
OK, FAIL_MASS, FAIL_NONFINITE, FAIL_SERIES, FAIL_NEGATIVE_TOTAL = 0, 1, 2, 3, 4
