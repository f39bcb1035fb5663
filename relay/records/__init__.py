"""What a call leaves behind: the SQLite database, the call log and its Ogg files, reads
for QA, marks, the access log, retention, export.
"""
