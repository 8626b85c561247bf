"""The test suite: tests/lab/ mirrors lab/'s subpackages, tests/ui/ holds the pages and ui/ through AppTest,
tests/browser/ the app in a real browser; project-wide checks sit here."""
