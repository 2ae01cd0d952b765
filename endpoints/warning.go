package endpoints

// Warning reports an input value that was skipped or corrected. Reason is a
// short stable code suitable for a metric label; Message is for people.
type Warning struct {
	// Object names the object, e.g. "EndpointSlice default/web-abc".
	Object  string
	Reason  string
	Message string
}

// Reasons reported by this package.
const (
	ReasonNoServiceName   = "NoServiceName"
	ReasonAddressType     = "UnsupportedAddressType"
	ReasonOtherFamily     = "OtherIPFamily"
	ReasonBadPort         = "InvalidPort"
	ReasonBadProtocol     = "UnknownProtocol"
	ReasonBadAddress      = "InvalidAddress"
	ReasonNoAddress       = "NoAddress"
	ReasonMissingMetadata = "MissingMetadata"
	ReasonBadName         = "InvalidName"
	ReasonSpecialAddress  = "SpecialAddress"
	ReasonRepeatedAddress = "RepeatedAddress"
)

func (w Warning) String() string {
	return w.Object + ": " + w.Message
}
