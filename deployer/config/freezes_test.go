package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// freezeConfig puts freezes, indented as under "    freezes:", on prod.
func freezeConfig(freezes string) string {
	return strings.Replace(releaseBase("", "        replicas: 3"), "  - name: prod\n", "  - name: prod\n    freezes:\n"+freezes, 1)
}

func TestFreezesLoad(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(freezeConfig(
		"      - {cron: \"0 18 * * FRI\", duration: 63h, timeZone: Europe/Berlin, reason: weekend}\n")))
	if err != nil {
		t.Fatal(err)
	}
	cal := cfg.FreezeCalendar()
	w := cal["prod"]
	if len(w) != 1 || w[0].Duration != 63*time.Hour || w[0].TimeZone != "Europe/Berlin" || w[0].Reason != "weekend" || len(cal["dev"]) != 0 {
		t.Fatalf("calendar %+v", cal)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	sat := time.Date(2026, 3, 7, 12, 0, 0, 0, berlin)
	until, frozen := w[0].Active(sat)
	if want := time.Date(2026, 3, 9, 9, 0, 0, 0, berlin); !frozen || !until.Equal(want) {
		t.Errorf("Saturday noon: frozen %v until %s, want until %s", frozen, until, want)
	}
	if _, frozen := w[0].Active(time.Date(2026, 3, 9, 9, 0, 0, 0, berlin)); frozen {
		t.Error("Monday 09:00 Berlin, when the freeze ends: still frozen")
	}
	if _, frozen := w[0].Active(time.Date(2026, 3, 6, 17, 59, 0, 0, berlin)); frozen {
		t.Error("Friday 17:59: frozen before the window")
	}
}

func TestFreezeErrorsPointAtTheItem(t *testing.T) {
	text := freezeConfig("      - cron: \"0 18 * * FRY\"\n        duration: 0s\n        timeZone: Mars/Olympus\n")
	_, err := Parse("f.yaml", []byte(text))
	if err == nil {
		t.Fatal("want errors")
	}
	line := lineOfText(t, text, "FRY")
	for _, want := range []string{
		`f.yaml:` + strconv.Itoa(line) + `: environments[1].freezes[0].cron: Invalid value: "0 18 * * FRY": `,
		`f.yaml:` + strconv.Itoa(line+1) + `: environments[1].freezes[0].duration: Invalid value: "0s": must be positive, e.g. 63h (environment "prod")`,
		`f.yaml:` + strconv.Itoa(line+2) + `: environments[1].freezes[0].timeZone: Invalid value: "Mars/Olympus": is not an IANA time zone, e.g. Europe/Berlin (environment "prod")`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack\n  %s\ngot\n%v", want, err)
		}
	}
}
