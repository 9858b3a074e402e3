"""One module per page (or group of small pages); `common` holds what they share."""
