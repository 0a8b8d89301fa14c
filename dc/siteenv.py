"""The environment variable that says which site's machines this bcpctl runs on.

Its own module because the configuration (which picks that site's ``control_db``) and the
control database (which names it when a database is missing) both need it, and the
configuration sits above the database's helpers.
"""

#: the site whose machines this bcpctl runs on (default: the primary); it picks that site's
#: ``control_db``, so the same configuration file serves both sites
SITE_ENV = "BCPCTL_SITE"
