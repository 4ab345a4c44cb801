"""Notebook 05 (the classic echo pair): its five faults (`faults`) and the fault lab (`lab`)."""
