package elasticsearch

// SetupWith and CheckWith are Setup and Check with the assets given, for
// tests against nodes that take only part of the shipped ones.
var (
	SetupWith = setupWith
	CheckWith = checkWith
)
