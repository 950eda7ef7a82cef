package export

// Manifest is the answer of a finished job's status request (IG: "Response - Complete
// Status").
type Manifest struct {
	// TransactionTime is the instant the export reflects: nothing written after it is
	// in the files.
	TransactionTime string `json:"transactionTime"`
	// Request is the kick-off URL.
	Request string `json:"request"`
	// RequiresAccessToken is always true: the files are served to the job's caller only.
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestFile `json:"output"`
	// Error lists the files of OperationOutcomes: the types left out and why.
	Error []ManifestFile `json:"error"`
}

// ManifestFile is one file of the manifest.
type ManifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count,omitempty"`
}
