"""Everything that touches the network: SMTP, IMAP and POP3 clients, CRL, OCSP and LDAP fetchers."""
