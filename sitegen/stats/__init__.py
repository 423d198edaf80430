"""Download statistics from the web server's own access logs (``sitegen stats``).

A static site has no application server to count requests, but nginx and Apache log every one.
The room reads those logs incrementally and turns them into counts:

* :mod:`~sitegen.stats.logline` parses one log line (``combined`` or the format ``sitegen
  webconf`` configures) and tells what a request path and a user agent are;
* :mod:`~sitegen.stats.logfiles` finds a log and its rotated siblings and reads only what is
  new, surviving rotation, truncation, compression and vanished files;
* :mod:`~sitegen.stats.tally` counts per day, channel, subdir and file (and per installer
  folder and file), and rolls old days into months;
* :mod:`~sitegen.stats.report` and :mod:`~sitegen.stats.charts` build ``stats.json``, the page
  models and inline SVG charts, as pure functions;
* :mod:`~sitegen.stats.run` ties them to a site.
"""
