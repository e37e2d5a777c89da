"""Sweeps: the controller's orchestration through Ansible, and the edge host's plan runner."""
