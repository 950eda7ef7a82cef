package fhirpath

// ForType returns e without the branches of its top-level union ("A.x | B.y | …")
// that start from a resource type other than typ, or nil when no branch is left. The
// R4 definitions share one expression among many types (clinical-patient names 30):
// evaluated on one type, the other types' branches select nothing, and pruning them
// once saves walking them for every resource written. Branches that start from
// Resource, DomainResource, typ itself or no type name are kept.
func (e *Expr) ForType(typ string) *Expr {
	branches := unionBranches(e.root, nil)
	var kept node
	for _, b := range branches {
		if root := rootName(b); root != "" && root != typ && root != "Resource" && root != "DomainResource" {
			continue
		}
		if kept == nil {
			kept = b
		} else {
			kept = &binaryNode{op: "|", l: kept, r: b}
		}
	}
	if kept == nil {
		return nil
	}
	if len(branches) == 1 {
		return e
	}
	return &Expr{src: e.src, root: kept}
}

// unionBranches appends the operands of the union n is (n itself if it is not one).
func unionBranches(n node, dst []node) []node {
	if b, ok := n.(*binaryNode); ok && b.op == "|" {
		return unionBranches(b.r, unionBranches(b.l, dst))
	}
	return append(dst, n)
}

// rootName returns the capitalised name a path starts from ("Observation" in
// "(Observation.value as Quantity).value"), or "" when it starts otherwise.
func rootName(n node) string {
	for {
		switch x := n.(type) {
		case *memberNode:
			if x.target == nil {
				if x.name != "" && x.name[0] >= 'A' && x.name[0] <= 'Z' {
					return x.name
				}
				return ""
			}
			n = x.target
		case *callNode:
			if x.target == nil {
				return ""
			}
			n = x.target
		case *indexNode:
			n = x.target
		case *typeTestNode:
			n = x.x
		default:
			return ""
		}
	}
}
