package local

// SweepStale exposes the removal of stale layer directories to the tests.
var SweepStale = sweepStale
