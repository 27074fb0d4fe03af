"""The autograder: grading any nbgrader course so that no student can fool it. This course is its first user.

Four wings, each importing only the ones below it:

  commands/   the instructor's commands over a course folder: collect, grade (the client: here with
              --jobs, or on a Dask cluster), feedback, manual, export, release, report (what the class
              got wrong, similar submissions); the course's source as data
  grading/    grading one submission, a pure function (grade.grade_one): the contract read from the
              source notebooks, the rebuild, the release bundle and nbgrader's pipelines, the typed job
              and outcome, the grading process and the trusted tests (execute)
  sandbox/    the OS sandbox (bubblewrap, cgroups, the launcher) and the learner's kernel in it
  bridge/     the wire format and protocol between the trusted tests and the learner's kernel

plus ``errors`` and ``text`` (what reaches a terminal or a spreadsheet), which all may use. nbgrader is
an instructor dependency (``pip install ppo-course[instructor]``), never a student one, so it is
imported only inside the functions that need it.
"""
