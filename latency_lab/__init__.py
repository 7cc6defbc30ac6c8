"""The latency-lab command line: joins the model (simulator) and the measured half (lab_apps)."""
