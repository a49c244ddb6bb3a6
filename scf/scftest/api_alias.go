package scftest

import (
	"sort"
	"strconv"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The alias actions.

// updateAliasIn is UpdateAlias's body: aliasIn's fields, required in the
// order UpdateAlias checks them.
type updateAliasIn aliasIn

func (in *updateAliasIn) target() fnRef {
	return fnRef{in.Namespace, in.FunctionName, []string{"FunctionVersion", in.FunctionVersion, "FunctionName", in.FunctionName, "Name", in.Name}}
}

// onAlias is onFunction for an action on one alias of the function: op
// gets the alias the request's Name names.
func onAlias[In any, P interface {
	fnBody[In]
	aliasName() string
}](s *Server, op func(in P, fn *function, a *alias) (any, *apiserver.Error)) regionalHandler {
	return onFunction(s, nil, func(in P, fn *function) (any, *apiserver.Error) {
		a := fn.aliases[in.aliasName()]
		if a == nil {
			return nil, apiserver.Errorf(scf.CodeAliasNotFound, "alias %s of function [%s] does not exist", in.aliasName(), fn.name)
		}
		return op(in, fn, a)
	})
}

func (in *aliasRefIn) aliasName() string    { return in.Name }
func (in *updateAliasIn) aliasName() string { return in.Name }

func validAlias(name string) bool {
	if name == "" || len(name) > 64 || !isLetter(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// routing validates an alias's target and routing configuration.
func routing(fn *function, main string, rc *wireRoutingConfig) (route, *apiserver.Error) {
	if fn.versions[main] == nil {
		return route{}, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", main, fn.name)
	}
	if rc == nil {
		return route{main: main}, nil
	}
	var ws []weight
	sum := 0.0
	for _, w := range rc.AdditionalVersionWeights {
		switch {
		case fn.versions[w.Version] == nil:
			return route{}, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", w.Version, fn.name)
		case w.Version == main:
			return route{}, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "version %s is already the alias's main version", w.Version)
		case w.Weight == nil || *w.Weight <= 0 || *w.Weight > 1:
			return route{}, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "the weight of version %s must be in (0,1]", w.Version)
		}
		sum += *w.Weight
		ws = append(ws, weight{version: w.Version, weight: *w.Weight})
	}
	if sum > 1+1e-9 {
		return route{}, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "the weights add up to %g, more than 1", sum)
	}
	var ms []versionMatch
	for _, m := range rc.AddtionVersionMatchs {
		if fn.versions[m.Version] == nil {
			return route{}, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", m.Version, fn.name)
		}
		switch m.Method {
		case "exact":
		case "range":
			if _, _, _, _, ok := parseRange(m.Expression); !ok {
				return route{}, apiserver.Errorf(scf.CodeInvalidValue, "range expression %q must look like [1,100)", m.Expression)
			}
		default:
			return route{}, apiserver.Errorf(scf.CodeInvalidValue, "Method %q must be exact or range", m.Method)
		}
		if m.Key == "" {
			return route{}, apiserver.Errorf("MissingParameter", "a version match needs a Key")
		}
		ms = append(ms, ruleOf(m))
	}
	return route{main: main, weights: ws, matches: ms}, nil
}

// ruleOf is an alias rule of a request, as the model keeps it.
func ruleOf(m wireVersionMatch) versionMatch {
	return versionMatch{version: m.Version, key: m.Key, method: m.Method, expression: m.Expression}
}

// matchRule applies a rule as the API spells it.
func matchRule(m wireVersionMatch, value string) bool { return ruleOf(m).matches(value) }

func (s *Server) createAlias() regionalHandler {
	return onFunction(s, nil, func(in *aliasIn, fn *function) (any, *apiserver.Error) {
		if fn.aliases[in.Name] != nil {
			return nil, apiserver.Errorf("ResourceInUse.Alias", "alias %s already exists", in.Name)
		}
		if !validAlias(in.Name) {
			return nil, apiserver.Errorf("InvalidParameterValue.Alias", "alias name %q must be 1–64 letters, digits, - and _, starting with a letter", in.Name)
		}
		r, e := routing(fn, in.FunctionVersion, in.RoutingConfig)
		if e != nil {
			return nil, e
		}
		s.model.addAlias(fn, in.Name, r, in.Description)
		return nil, nil
	})
}

func aliasView(a *alias) aliasOut {
	out := aliasOut{FunctionVersion: a.main, Name: a.name, Description: a.desc, AddTime: apiTime(a.added), ModTime: apiTime(a.modified),
		RoutingConfig: wireRoutingConfig{AdditionalVersionWeights: []wireVersionWeight{}, AddtionVersionMatchs: []wireVersionMatch{}}}
	for _, w := range a.weights {
		out.RoutingConfig.AdditionalVersionWeights = append(out.RoutingConfig.AdditionalVersionWeights, wireVersionWeight{Version: w.version, Weight: &w.weight})
	}
	for _, r := range a.matches {
		out.RoutingConfig.AddtionVersionMatchs = append(out.RoutingConfig.AddtionVersionMatchs,
			wireVersionMatch{Version: r.version, Key: r.key, Method: r.method, Expression: r.expression})
	}
	return out
}

func (s *Server) getAlias() regionalHandler {
	return onAlias(s, func(_ *aliasRefIn, _ *function, a *alias) (any, *apiserver.Error) {
		return aliasView(a), nil
	})
}

func (s *Server) updateAlias() regionalHandler {
	return onAlias(s, func(in *updateAliasIn, fn *function, a *alias) (any, *apiserver.Error) {
		r, e := routing(fn, in.FunctionVersion, in.RoutingConfig)
		if e != nil {
			return nil, e
		}
		s.model.setAlias(a, r, in.Description)
		return nil, nil
	})
}

func (s *Server) deleteAlias() regionalHandler {
	return onAlias(s, func(_ *aliasRefIn, fn *function, a *alias) (any, *apiserver.Error) {
		return nil, s.model.deleteAlias(fn, a)
	})
}

// page is ListAliases' Offset and Limit.
type page struct{ offset, limit int }

func aliasPage(in *listAliasesIn) (page, *apiserver.Error) {
	offset, limit := 0, 20
	for _, p := range []struct {
		name, v string
		dst     *int
	}{{"Offset", in.Offset, &offset}, {"Limit", in.Limit, &limit}} {
		if p.v == "" {
			continue
		}
		n, err := strconv.Atoi(p.v)
		if err != nil || n < 0 {
			return page{}, apiserver.Errorf(scf.CodeInvalidValue, "%s %q must be a number ≥ 0", p.name, p.v)
		}
		*p.dst = n
	}
	return page{offset, limit}, nil
}

func (s *Server) listAliases() regionalHandler {
	return onParsed(s, aliasPage, func(in *listAliasesIn, p page, fn *function) (any, *apiserver.Error) {
		offset, limit := p.offset, p.limit
		var names []string
		for name, a := range fn.aliases {
			if in.FunctionVersion == "" || a.main == in.FunctionVersion {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		out := listAliasesOut{Aliases: []aliasOut{}, TotalCount: uint64(len(names))}
		for i := offset; i < len(names) && i < offset+limit; i++ {
			out.Aliases = append(out.Aliases, aliasView(fn.aliases[names[i]]))
		}
		return out, nil
	})
}
