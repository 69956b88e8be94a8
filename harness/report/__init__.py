"""Run reports: report.json (machine), report.html (people), junit.xml (CI)."""
