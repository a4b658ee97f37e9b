"""The file pole: documents on object storage, with versions, shares and expiring links."""
