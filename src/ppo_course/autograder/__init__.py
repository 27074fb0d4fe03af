"""The instructor side: release lessons from solutions/ and grade submissions, on nbgrader.

nbgrader is an instructor dependency (``pip install ppo-course[instructor]``), never a student one,
so it is imported only inside the functions that need it.
"""
