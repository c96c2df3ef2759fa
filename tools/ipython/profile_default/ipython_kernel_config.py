# Kernel settings for every notebook the book's tools execute (sync, nbval,
# benchmarks set IPYTHONDIR to this folder's parent).
#
# TensorFlow's C++ start-up lines (absl, oneDNN, cuInit) are written straight
# to file descriptor 2. ipykernel normally captures that descriptor and stores
# the lines in the notebook; TF_CPP_MIN_LOG_LEVEL does not silence all of them.
# Not capturing it sends them to the terminal that runs the tools instead.
c.IPKernelApp.capture_fd_output = False  # noqa: F821  (c is IPython's config)
