package resources

import (
	"math"
	"strconv"
	"strings"
)

// Near is the value of a Location near search (R4 §3.1.1.5.12):
// latitude|longitude|distance|units, a point and the greatest distance from it along
// the earth's surface.
type Near struct {
	Lat, Long float64
	// Meters is the distance in metres.
	Meters float64
}

// NearDefaultDistance is the distance of a near search that gives none, in metres: R4
// leaves it to the server.
const NearDefaultDistance = 5000

// nearUnits are the units a near distance may be given in (UCUM codes and the plain
// km, m and mi), in metres.
var nearUnits = map[string]float64{
	"km": 1000, "m": 1, "mi": 1609.344, "[mi_i]": 1609.344,
}

// isNear reports whether a special parameter is a near search on positions
// ({latitude, longitude}) such as Location.near: the only special parameter fhirbox
// indexes and searches.
func isNear(p *SearchParam) bool {
	return p.Type == TypeSpecial && p.Name == "near" && strings.HasSuffix(p.Expression, ".position")
}

// parseNear reads latitude|longitude[|distance[|units]]; what is wrong is returned as
// a message for the caller to attach to the parameter.
func parseNear(item string) (*Near, string) {
	parts := splitEscaped(item, '|')
	if len(parts) < 2 || len(parts) > 4 {
		return nil, "near is latitude|longitude|distance|units (distance and units may be left out)"
	}
	num := func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(unescape(s)), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	n := &Near{Meters: NearDefaultDistance}
	var ok bool
	if n.Lat, ok = num(parts[0]); !ok || math.Abs(n.Lat) > 90 {
		return nil, "the latitude must be a number from -90 to 90"
	}
	if n.Long, ok = num(parts[1]); !ok || math.Abs(n.Long) > 180 {
		return nil, "the longitude must be a number from -180 to 180"
	}
	unit := 1000.0
	if len(parts) == 4 && parts[3] != "" {
		u := unescape(parts[3])
		if unit, ok = nearUnits[u]; !ok {
			return nil, "unknown distance unit " + strconv.Quote(u) + " (km, m, mi or [mi_i])"
		}
	}
	if len(parts) >= 3 && parts[2] != "" {
		d, ok := num(parts[2])
		if !ok || d < 0 {
			return nil, "the distance must be a non-negative number"
		}
		n.Meters = d * unit
	}
	return n, ""
}

// NearBox returns what a store needs to search for the positions within n.Meters of
// n's point, as indexed under PositionParam: the point's unit vector c, and the greatest
// chord (straight-line distance between two points of the unit sphere) chord that
// distance makes. A position p is near when |p - c|² ≤ chord², and only then; each axis
// of p is within chord of c's, which an index can narrow to.
func (n *Near) NearBox() (c [3]float64, chord float64) {
	angle := math.Min(n.Meters/earthRadius, math.Pi)
	return unitVector(n.Lat, n.Long), 2 * math.Sin(angle/2)
}
