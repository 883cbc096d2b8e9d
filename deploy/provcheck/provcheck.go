// Package provcheck validates a Grafana file-provisioning directory (datasources/, dashboards/, alerting/) the
// way Grafana itself does when it loads it at start-up, so that a broken file fails a test here instead of
// making a real Grafana refuse to start.
//
// Why it exists: Grafana validates provisioning only when it loads it, and an alert-rule file that fails
// validation stops the provisioning service, and with it the whole server (a crash loop with no HTTP listener,
// seen on Grafana 10.4 through 13.x). There is no Grafana server on the development and CI machines, so each
// rule that Grafana enforces is written down here, with the Grafana code or documented behaviour it comes from,
// and every check has a broken fixture in provcheck_test.go that makes it fail. The checks target the Grafana
// line the compose file runs (11.6); where later lines differ, the stricter rule is kept.
//
// Each Problem names its check; docs/demo.md lists the checks and their sources.
package provcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// The checks. Each constant's comment says where Grafana enforces it.
const (
	// RuleAnnotationPair: __dashboardUid__ and __panelId__ must both be set or both be absent, and __panelId__ is
	// an integer. Grafana: ngalert models.AlertRule.SetDashboardAndPanelFromAnnotations, called when file
	// provisioning maps a rule ("both annotations __dashboardUid__ and __panelId__ must be specified"; "annotation
	// __panelId__ must be a valid integer Panel ID"). Failing it stops provisioning and Grafana exits.
	RuleAnnotationPair = "rule-annotation-pair"
	// RuleUID: every rule has a uid of at most 40 characters from [A-Za-z0-9_-], unique in its organisation.
	// Grafana: provisioning/alerting rules_types.go mapToModel ("no UID set") and AlertRule.ValidateAlertRule →
	// util.ValidateUID (MaxUIDLength 40, "Only letters, numbers, '-' and '_' are allowed").
	RuleUID = "rule-uid"
	// RuleTitle: every rule has a title, unique per organisation and folder. Grafana: mapToModel ("rule has no
	// title set") and the alert_rule (org_id, namespace_uid, title) unique index
	// (ErrAlertRuleUniqueConstraintViolation: "rule title under the same organisation and folder should be unique").
	RuleTitle = "rule-title"
	// RuleCondition: the condition names the refId of one of the rule's queries or expressions, and refIds are
	// unique. Grafana: mapToModel ("no condition set"); the evaluator fails every evaluation of a rule whose
	// condition is not among its refIds (rule health "error").
	RuleCondition = "rule-condition"
	// RuleDatasource: every query's datasourceUid is a provisioned data source or the expression engine
	// "__expr__" (older files: "-100"). Grafana: a rule whose data source does not exist fails every evaluation
	// ("data source not found"), and rule validation on save rejects it.
	RuleDatasource = "rule-datasource"
	// RuleTimeRange: a data-source query's relativeTimeRange has from > to (seconds before now); expressions are
	// exempt. Grafana: ngalert models.AlertQuery.PreSave / RelativeTimeRange.isValid ("invalid relative time
	// range").
	RuleTimeRange = "rule-time-range"
	// GroupInterval: a group has a name, a folder, and an interval that is a positive multiple of the scheduler's
	// base interval (unified_alerting.base_interval, 10 s). Grafana: AlertRuleGroupV1.MapToModel ("rule group has
	// no name set", "no folder set") and models.ValidateRuleGroupInterval ("should be non-zero and divided
	// exactly by scheduler interval").
	GroupInterval = "group-interval"
	// RuleStates: noDataState is one of Alerting, NoData, OK, KeepLast and execErrState one of Alerting, Error,
	// OK, KeepLast (empty means the default); `for` parses as a duration. Grafana: models.NoDataStateFromString,
	// models.ErrStateFromString, mapToModel ("failed to parse 'for' field").
	RuleStates = "rule-states"
	// RulePanel: a rule's __dashboardUid__ is a provisioned dashboard and its __panelId__ a panel of it. Grafana
	// stores the link as it is; a wrong one shows the rule on no panel, or on the wrong one.
	RulePanel = "rule-panel"
	// DashboardUID: every dashboard has a uid of at most 40 characters from [A-Za-z0-9_-], unique across the
	// provisioned dashboards, and a title unique in its folder. Grafana: dashboards service
	// (ErrDashboardUidTooLong, ErrDashboardInvalidUid, ErrDashboardWithSameNameInFolderExists) and the file
	// provisioner ("the same UID is used more than once": all but one are skipped).
	DashboardUID = "dashboard-uid"
	// PanelIDs: every panel, rows and panels inside collapsed rows included, has an integer id, unique in its
	// dashboard. Grafana's dashboard model assigns new ids to panels without one and renumbers duplicates when the
	// dashboard loads, which moves __panelId__ links to other panels.
	PanelIDs = "panel-ids"
	// DashboardDatasource: every data-source reference (panels, targets, variables, annotations) is a provisioned
	// data source uid, a built-in (-- Grafana --, -- Mixed --, -- Dashboard --, __expr__) or a template variable.
	// Grafana: the panel shows "Datasource ... was not found".
	DashboardDatasource = "dashboard-datasource"
	// DatasourceUID: every data source has a name and a uid of at most 40 characters from [A-Za-z0-9_-]; names
	// and uids are unique; at most one default per organisation. Grafana: datasource provisioning
	// (util.ValidateUID; "Only one datasource per organization can be marked as default").
	DatasourceUID = "datasource-uid"
	// DatasourceType: a data source of this plugin has type = the plugin id (Grafana loads no plugin for another
	// type and the data source shows "plugin not found").
	DatasourceType = "datasource-type"
	// DatasourceKeys: jsonData and secureJsonData carry only the keys the plugin reads. Grafana stores any key
	// and the plugin ignores unknown ones, so a misspelt key silently loses its setting.
	DatasourceKeys = "datasource-keys"
	// Folders: alert rules and dashboards share one folder. Grafana ≥ 11.3 allows two folders with the same
	// title: alerting provisioning finds or creates its folder by title, so a dashboard provider that asks for
	// a folderUid under the same title creates a second folder of that title.
	Folders = "folders"
)

// Problem is one finding.
type Problem struct {
	Check string // one of the constants above
	File  string // relative to the provisioning directory
	Msg   string
}

func (p Problem) String() string { return fmt.Sprintf("%s: [%s] %s", p.File, p.Check, p.Msg) }

// Options tunes the validator.
type Options struct {
	// PluginID is the type a data source of this plugin must have; "" skips DatasourceType/DatasourceKeys.
	PluginID string
	// JSONDataKeys and SecureJSONDataKeys are the settings the plugin reads ("postgres.host", "mqttPassword");
	// nil skips DatasourceKeys.
	JSONDataKeys, SecureJSONDataKeys []string
	// BaseInterval is unified_alerting.base_interval (default 10 s).
	BaseInterval time.Duration
	// ContainerRoot is the directory Grafana reads provisioning from (GF_PATHS_PROVISIONING), used to map a
	// dashboard provider's options.path to the directory checked (default /etc/grafana/provisioning).
	ContainerRoot string
	// Env expands $VAR and ${VAR} in data-source files as Grafana does; nil leaves them unexpanded. (Alert
	// rules are not expanded here: Grafana expands only braced variables in their annotations and none in
	// query models, and `$labels`/`$__timeFilter` there are templates, not environment variables.)
	Env func(string) string
}

var uidPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_]*$`)

const maxUIDLength = 40

func validUID(uid string) error {
	switch {
	case uid == "":
		return errors.New("no uid set")
	case len(uid) > maxUIDLength:
		return fmt.Errorf("uid %q is longer than %d characters", uid, maxUIDLength)
	case !uidPattern.MatchString(uid):
		return fmt.Errorf("uid %q: only letters, numbers, '-' and '_' are allowed", uid)
	}
	return nil
}

type checker struct {
	dir  string
	o    Options
	out  []Problem
	dss  map[string]bool           // provisioned data-source uids
	dash map[string]map[int64]bool // dashboard uid → panel ids
	// folders
	ruleFolders     map[string]bool
	providerFolders []provider
}

func (c *checker) add(check, file, format string, args ...any) {
	c.out = append(c.out, Problem{Check: check, File: file, Msg: fmt.Sprintf(format, args...)})
}

// Check validates the provisioning directory dir and returns every problem found (nil when Grafana would load
// it). An error means the directory could not be read or a file could not be parsed at all.
func Check(dir string, o Options) ([]Problem, error) {
	if o.BaseInterval == 0 {
		o.BaseInterval = 10 * time.Second
	}
	if o.ContainerRoot == "" {
		o.ContainerRoot = "/etc/grafana/provisioning"
	}
	c := &checker{dir: dir, o: o, dss: map[string]bool{}, dash: map[string]map[int64]bool{}, ruleFolders: map[string]bool{}}
	if err := c.datasources(); err != nil {
		return nil, err
	}
	if err := c.dashboards(); err != nil {
		return nil, err
	}
	if err := c.alerting(); err != nil {
		return nil, err
	}
	for _, p := range c.providerFolders {
		if p.FolderUID != "" && c.ruleFolders[p.Folder] {
			c.add(Folders, p.file, "dashboard provider %q asks for folderUid %q under the title %q, which alert rules also use: Grafana ≥ 11.3 creates two folders of that title; drop folderUid (both then find the folder by title)", p.Name, p.FolderUID, p.Folder)
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].File < c.out[j].File })
	return c.out, nil
}

// yamlFiles lists *.yaml, *.yml (and *.json for alerting) in dir/sub, as Grafana reads them.
func (c *checker) files(sub string, exts ...string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(c.dir, sub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sub, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && slices.Contains(exts, filepath.Ext(e.Name())) {
			out = append(out, filepath.Join(sub, e.Name()))
		}
	}
	return out, nil
}

func (c *checker) read(rel string, expand bool) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, rel))
	if err != nil {
		return nil, err
	}
	if expand && c.o.Env != nil {
		b = []byte(os.Expand(string(b), c.o.Env))
	}
	return b, nil
}

func decodeYAML(b []byte, rel string, v any) error {
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// ---- data sources ----

type dsFile struct {
	Datasources []struct {
		Name           string         `yaml:"name"`
		UID            string         `yaml:"uid"`
		Type           string         `yaml:"type"`
		OrgID          int64          `yaml:"orgId"`
		IsDefault      bool           `yaml:"isDefault"`
		JSONData       map[string]any `yaml:"jsonData"`
		SecureJSONData map[string]any `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

func (c *checker) datasources() error {
	files, err := c.files("datasources", ".yaml", ".yml")
	if err != nil {
		return err
	}
	names, defaults := map[string]bool{}, map[int64]int{}
	for _, rel := range files {
		b, err := c.read(rel, true)
		if err != nil {
			return err
		}
		var f dsFile
		if err := decodeYAML(b, rel, &f); err != nil {
			return err
		}
		for _, ds := range f.Datasources {
			org := max(ds.OrgID, 1)
			if ds.Name == "" {
				c.add(DatasourceUID, rel, "a data source has no name")
			} else if names[ds.Name] {
				c.add(DatasourceUID, rel, "data source name %q is used twice", ds.Name)
			}
			names[ds.Name] = true
			if err := validUID(ds.UID); err != nil {
				c.add(DatasourceUID, rel, "data source %q: %v (dashboards and rules reference data sources by uid)", ds.Name, err)
			} else if c.dss[ds.UID] {
				c.add(DatasourceUID, rel, "data source uid %q is used twice", ds.UID)
			}
			c.dss[ds.UID] = true
			if ds.IsDefault {
				if defaults[org]++; defaults[org] == 2 {
					c.add(DatasourceUID, rel, "more than one default data source in org %d", org)
				}
			}
			if c.o.PluginID == "" {
				continue
			}
			if ds.Type != c.o.PluginID && strings.Contains(ds.Type, "fieldline") {
				c.add(DatasourceType, rel, "data source %q has type %q; the plugin id is %q", ds.Name, ds.Type, c.o.PluginID)
			}
			if ds.Type != c.o.PluginID || c.o.JSONDataKeys == nil {
				continue
			}
			for _, k := range flatKeys("", ds.JSONData) {
				if !knownKey(c.o.JSONDataKeys, k) {
					c.add(DatasourceKeys, rel, "data source %q: jsonData.%s is not a setting the plugin reads", ds.Name, k)
				}
			}
			for k := range ds.SecureJSONData {
				if !slices.Contains(c.o.SecureJSONDataKeys, k) {
					c.add(DatasourceKeys, rel, "data source %q: secureJsonData.%s is not a secret the plugin reads", ds.Name, k)
				}
			}
		}
	}
	return nil
}

// flatKeys lists the leaf paths of a YAML map ("postgres.host").
func flatKeys(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			out = append(out, flatKeys(p, sub)...)
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// knownKey accepts a leaf path or one below a known object (a known "postgres" accepts nothing below it unless
// listed: keys are leaf paths).
func knownKey(known []string, k string) bool { return slices.Contains(known, k) }

// ---- dashboards ----

type provider struct {
	Name      string `yaml:"name"`
	OrgID     int64  `yaml:"orgId"`
	Folder    string `yaml:"folder"`
	FolderUID string `yaml:"folderUid"`
	Type      string `yaml:"type"`
	Options   struct {
		Path string `yaml:"path"`
	} `yaml:"options"`
	file string
}

type dashboard struct {
	UID         string               `json:"uid"`
	Title       string               `json:"title"`
	Panels      []panel              `json:"panels"`
	Templating  struct{ List []ref } `json:"templating"`
	Annotations struct{ List []ref } `json:"annotations"`
}

type ref struct {
	Name       string          `json:"name"`
	Datasource json.RawMessage `json:"datasource"`
}

type panel struct {
	ID         json.RawMessage `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []ref           `json:"targets"`
	Panels     []panel         `json:"panels"` // a collapsed row's panels
}

func (c *checker) dashboards() error {
	files, err := c.files("dashboards", ".yaml", ".yml")
	if err != nil {
		return err
	}
	titles := map[string]string{} // folder + title → file
	for _, rel := range files {
		b, err := c.read(rel, false)
		if err != nil {
			return err
		}
		var f struct {
			Providers []provider `yaml:"providers"`
		}
		if err := decodeYAML(b, rel, &f); err != nil {
			return err
		}
		for _, p := range f.Providers {
			p.file = rel
			c.providerFolders = append(c.providerFolders, p)
			dir := p.Options.Path
			if r, ok := strings.CutPrefix(dir, c.o.ContainerRoot); ok {
				dir = filepath.Join(c.dir, filepath.FromSlash(r))
			} else if !filepath.IsAbs(dir) {
				dir = filepath.Join(c.dir, dir)
			}
			jsons, err := filepath.Glob(filepath.Join(dir, "*.json"))
			if err != nil || len(jsons) == 0 {
				c.add(DashboardUID, rel, "provider %q: no dashboards at options.path %q", p.Name, p.Options.Path)
				continue
			}
			for _, path := range jsons {
				drel, _ := filepath.Rel(c.dir, path)
				if err := c.dashboard(drel, p.Folder, titles); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *checker) dashboard(rel, folder string, titles map[string]string) error {
	b, err := os.ReadFile(filepath.Join(c.dir, rel))
	if err != nil {
		return err
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if err := validUID(d.UID); err != nil {
		c.add(DashboardUID, rel, "dashboard %q: %v", d.Title, err)
	} else if _, dup := c.dash[d.UID]; dup {
		c.add(DashboardUID, rel, "dashboard uid %q is used more than once: Grafana provisions one of them", d.UID)
	}
	key := folder + "\x00" + d.Title
	if other, dup := titles[key]; dup {
		c.add(DashboardUID, rel, "dashboard title %q is also used by %s in folder %q", d.Title, other, folder)
	}
	titles[key] = rel
	ids := map[int64]bool{}
	c.dash[d.UID] = ids
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			id, err := strconv.ParseInt(strings.TrimSpace(string(p.ID)), 10, 64)
			switch {
			case len(p.ID) == 0 || string(p.ID) == "null":
				c.add(PanelIDs, rel, "panel %q has no id: Grafana assigns one when the dashboard loads, so rules cannot link to it", p.Title)
			case err != nil:
				c.add(PanelIDs, rel, "panel %q: id %s is not an integer", p.Title, p.ID)
			case ids[id]:
				c.add(PanelIDs, rel, "panel id %d is used twice: Grafana renumbers one of them when the dashboard loads", id)
			default:
				ids[id] = true
			}
			c.dsRef(rel, fmt.Sprintf("panel %q", p.Title), p.Datasource)
			for _, t := range p.Targets {
				c.dsRef(rel, fmt.Sprintf("panel %q target", p.Title), t.Datasource)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		c.dsRef(rel, fmt.Sprintf("variable %q", v.Name), v.Datasource)
	}
	for _, a := range d.Annotations.List {
		c.dsRef(rel, fmt.Sprintf("annotation %q", a.Name), a.Datasource)
	}
	return nil
}

var builtinDatasources = []string{"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__", "-100"}

// dsRef checks one data-source reference: {"type", "uid"}, a bare uid or name string, or absent (the panel's or
// the default data source).
func (c *checker) dsRef(rel, where string, raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var uid string
	var obj struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil {
		uid = obj.UID
	} else if err := json.Unmarshal(raw, &uid); err != nil {
		c.add(DashboardDatasource, rel, "%s: data source reference %s is neither an object nor a string", where, raw)
		return
	}
	if uid == "" || strings.HasPrefix(uid, "$") || slices.Contains(builtinDatasources, uid) || c.dss[uid] {
		return
	}
	c.add(DashboardDatasource, rel, "%s: data source uid %q is not provisioned", where, uid)
}

// ---- alerting ----

type alertFile struct {
	Groups []struct {
		OrgID    int64  `yaml:"orgId"`
		Name     string `yaml:"name"`
		Folder   string `yaml:"folder"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			UID          string            `yaml:"uid"`
			Title        string            `yaml:"title"`
			Condition    string            `yaml:"condition"`
			NoDataState  string            `yaml:"noDataState"`
			ExecErrState string            `yaml:"execErrState"`
			For          string            `yaml:"for"`
			Annotations  map[string]string `yaml:"annotations"`
			Data         []struct {
				RefID             string `yaml:"refId"`
				DatasourceUID     string `yaml:"datasourceUid"`
				RelativeTimeRange struct {
					From int64 `yaml:"from"`
					To   int64 `yaml:"to"`
				} `yaml:"relativeTimeRange"`
			} `yaml:"data"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func (c *checker) alerting() error {
	files, err := c.files("alerting", ".yaml", ".yml", ".json")
	if err != nil {
		return err
	}
	uids := map[string]string{}   // org/uid → file
	titles := map[string]string{} // org/folder/title → file
	for _, rel := range files {
		b, err := c.read(rel, false)
		if err != nil {
			return err
		}
		var f alertFile
		if err := decodeYAML(b, rel, &f); err != nil {
			return err
		}
		for _, g := range f.Groups {
			org := max(g.OrgID, 1)
			if strings.TrimSpace(g.Name) == "" {
				c.add(GroupInterval, rel, "a rule group has no name set")
			}
			if strings.TrimSpace(g.Folder) == "" {
				c.add(GroupInterval, rel, "rule group %q has no folder set", g.Name)
			}
			c.ruleFolders[g.Folder] = true
			if d, err := parsePromDuration(g.Interval); err != nil {
				c.add(GroupInterval, rel, "rule group %q: interval %q: %v", g.Name, g.Interval, err)
			} else if d <= 0 || d%c.o.BaseInterval != 0 {
				c.add(GroupInterval, rel, "rule group %q: interval %s should be non-zero and divided exactly by the scheduler interval %s", g.Name, d, c.o.BaseInterval)
			}
			for _, r := range g.Rules {
				name := r.Title
				if name == "" {
					name = r.UID
					c.add(RuleTitle, rel, "rule %q has no title set", r.UID)
				}
				if err := validUID(r.UID); err != nil {
					c.add(RuleUID, rel, "rule %q: %v", name, err)
				} else if other, dup := uids[fmt.Sprint(org, "/", r.UID)]; dup {
					c.add(RuleUID, rel, "rule uid %q is also used in %s", r.UID, other)
				}
				uids[fmt.Sprint(org, "/", r.UID)] = rel
				if r.Title != "" {
					key := fmt.Sprint(org, "/", g.Folder, "/", r.Title)
					if other, dup := titles[key]; dup {
						c.add(RuleTitle, rel, "rule title %q is also used in %s in folder %q: titles must be unique per folder", r.Title, other, g.Folder)
					}
					titles[key] = rel
				}
				c.ruleStates(rel, name, r.NoDataState, r.ExecErrState, r.For)
				refs := map[string]bool{}
				for _, d := range r.Data {
					if d.RefID == "" || refs[d.RefID] {
						c.add(RuleCondition, rel, "rule %q: refId %q is empty or used twice", name, d.RefID)
					}
					refs[d.RefID] = true
					expr := d.DatasourceUID == "__expr__" || d.DatasourceUID == "-100"
					if !expr && !c.dss[d.DatasourceUID] {
						c.add(RuleDatasource, rel, "rule %q query %s: datasourceUid %q is neither a provisioned data source nor __expr__", name, d.RefID, d.DatasourceUID)
					}
					if !expr && d.RelativeTimeRange.From <= d.RelativeTimeRange.To {
						c.add(RuleTimeRange, rel, "rule %q query %s: invalid relative time range from %d to %d (from must be more seconds ago than to)", name, d.RefID, d.RelativeTimeRange.From, d.RelativeTimeRange.To)
					}
				}
				if len(r.Data) == 0 {
					c.add(RuleCondition, rel, "rule %q has no data set", name)
				}
				if r.Condition == "" {
					c.add(RuleCondition, rel, "rule %q has no condition set", name)
				} else if !refs[r.Condition] {
					c.add(RuleCondition, rel, "rule %q: condition %q is not one of its refIds", name, r.Condition)
				}
				c.rulePanel(rel, name, r.Annotations)
			}
		}
	}
	return nil
}

func (c *checker) ruleStates(rel, name, noData, execErr, forDur string) {
	if s := strings.TrimSpace(noData); s != "" && !slices.Contains([]string{"Alerting", "NoData", "OK", "KeepLast"}, s) {
		c.add(RuleStates, rel, "rule %q: unknown NoData state option %s", name, s)
	}
	if s := strings.TrimSpace(execErr); s != "" && !slices.Contains([]string{"Alerting", "Error", "OK", "KeepLast"}, s) {
		c.add(RuleStates, rel, "rule %q: unknown Error state option %s", name, s)
	}
	if forDur != "" {
		if _, err := parsePromDuration(forDur); err != nil {
			c.add(RuleStates, rel, "rule %q: failed to parse 'for' field %q: %v", name, forDur, err)
		}
	}
}

func (c *checker) rulePanel(rel, name string, ann map[string]string) {
	dashUID, panelID := ann["__dashboardUid__"], ann["__panelId__"]
	if (dashUID == "") != (panelID == "") {
		c.add(RuleAnnotationPair, rel, "rule %q: both annotations __dashboardUid__ and __panelId__ must be specified", name)
		return
	}
	if dashUID == "" {
		return
	}
	id, err := strconv.ParseInt(panelID, 10, 64)
	if err != nil {
		c.add(RuleAnnotationPair, rel, "rule %q: annotation __panelId__ must be a valid integer Panel ID, not %q", name, panelID)
		return
	}
	panels, ok := c.dash[dashUID]
	if !ok {
		c.add(RulePanel, rel, "rule %q: __dashboardUid__ %q is not a provisioned dashboard", name, dashUID)
		return
	}
	if !panels[id] {
		c.add(RulePanel, rel, "rule %q: dashboard %q has no panel with id %d", name, dashUID, id)
	}
}

// parsePromDuration parses a duration as Grafana's alerting provisioning does (prometheus/common/model).
func parsePromDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}
