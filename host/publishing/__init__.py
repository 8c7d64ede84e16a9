"""Publishing: mini-program packages, their review and their release (docs/publishing.md)."""
