"""The OS sandbox a learner's kernel runs in, and the kernel itself.

``bubblewrap`` builds the sandbox (namespaces, mounts, what the kernel sees; ``probe`` says whether this
machine can run it), ``launch`` is the small program that enters it (limits, cgroups, a network
namespace with loopback down), ``cgroups`` the memory and process limits, ``kernel`` one learner kernel
(started, given cells, watched, stopped), and ``package`` the course's package with the graded
assignment's references stubbed. Nothing here knows about tests or grades.
"""
