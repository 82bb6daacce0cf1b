"""D1-D3: capture of served predictions, ground-truth labels, and the monitor that judges them.

``capture`` and ``feedback`` are imported by the serve and capture functions (standard library only);
``monitor`` by the monitor function (pandas and scikit-learn, the train bundle).
"""
