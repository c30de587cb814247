"""The service's settings, read from the environment in one place
(:class:`~coldbrew.config.settings.Settings`), and what a plain API key must look like
(:mod:`coldbrew.config.keys`). Read by ``coldbrew serve`` and given to the HTTP app
(:mod:`coldbrew.serve`); nothing here is HTTP."""
