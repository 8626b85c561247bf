"""Run folders: what a run's files hold (contents, tensor_files), reading them without trusting them and
writing them atomically (io), one run as read (record) and as written (writer), the store over a runs folder
(store), a trained model rebuilt from its files (restore) and a disk cache of derived arrays (arraycache)."""
