"""The asyncio reference Primary and Viewer, built on the sans-IO core."""
