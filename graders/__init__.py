"""The graders of the RNN course: the checks behind every autograded test cell.

- ``graders.core``          comparisons, tolerances (``TOL``), student calls, the self-check protocol
- ``graders.torch_layout``  the NumPy <-> torch weight layout and the torch modules oracles use
- ``graders.modules``       checks of a student's ``nn.Module`` classes shared by a4 and a5 (layers, masks, gradients)
- ``graders.<assignment_id>`` one module per assignment (``a1_rnn_numpy``, ``a2_lstm_numpy``,
  ``a3_rnn_pytorch``, ``a4_seq2seq_attention``, ``a5_transfer_captioning``, ``a6_hyperparameters``): its
  oracles, ``check_*`` functions and thresholds

Every notebook imports its grader the same way, ``from graders import a1_rnn_numpy as grader``,
and every autograded test cell imports it again before it calls a check::

    from graders import a1_rnn_numpy as grader
    grader.check_rnn_forward(rnn_forward)

so that nothing a student's cell binds (``grader = ...``, ``check_rnn_forward = ...``) changes
what the test calls. Tampering that a re-import cannot undo (patching modules, reading the
grader's frames) is found by the instructor's integrity scan (``instructor.integrity``) and
reported in the autograde summary. Held-out grading data is made inside the checks from seeds
that only the hidden tests give, or (a6's learning curves of real runs) read from a file in ``datasets/``
that belongs to the instructor's copy only and that a student's cell may not name (the integrity scan).
"""
