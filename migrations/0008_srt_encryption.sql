-- SRT's own AES encryption a stream asks of its SRT publishers:
-- {"passphrase": "...", "key_length": 0|16|24|32}, or NULL for none.
ALTER TABLE streams ADD COLUMN srt_encryption jsonb;
