"use strict";
// Placeholder: the page itself is written in daemon/web/ by the page's own change.
