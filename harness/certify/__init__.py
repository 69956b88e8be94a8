"""Certification of a third-party Viewer or Primary: grades, certificates and the matrix."""
