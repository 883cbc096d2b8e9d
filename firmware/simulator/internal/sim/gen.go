// Package sim is fieldline-sim's engine: value generators for the two field reports' sensors, the fleet of
// virtual nodes that turns them into MQTT messages (topics, payloads, fault modes), and the publisher loop.
//
// Every generator draws from its own *rand.Rand and the simulated time it is given, so a seed and a sequence of
// times always produce the same values.
package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// NewRand returns a deterministic generator for a seed and a stream number (one stream per node and purpose,
// so adding a node or a fault mode does not change the values of the others).
func NewRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream*0x9e3779b97f4a7c15+1))
}

// Diurnal returns the daily cycle in [-1, 1] at t: -1 at 03:00, +1 at 15:00 (of a day of the given length,
// counted from midnight UTC; day <= 0 means 24 h).
func Diurnal(t time.Time, day time.Duration) float64 {
	if day <= 0 {
		day = 24 * time.Hour
	}
	ns := t.UnixNano() % int64(day) // the Unix epoch is a midnight UTC: day 24 h follows the UTC clock
	if ns < 0 {
		ns += int64(day)
	}
	phase := float64(ns) / float64(day)
	// (phase - 0.375) puts the sine's peak at 15:00 (phase 0.625) and its trough at 03:00 (phase 0.125).
	return math.Sin(2 * math.Pi * (phase - 0.375))
}

// Climate models one node's air: temperature follows the diurnal cycle plus slow AR(1) noise, relative humidity
// moves against it (warmer air, lower relative humidity) with its own noise.
type Climate struct {
	BaseC     float64       // daily mean temperature, °C
	AmpC      float64       // half the daily swing, °C
	NoiseC    float64       // standard deviation of the temperature noise, °C
	BaseRH    float64       // relative humidity at the daily mean temperature, %
	RHPerC    float64       // % RH lost per °C above the mean (> 0: anti-correlated)
	NoiseRH   float64       // standard deviation of the humidity noise, %
	Day       time.Duration // length of the simulated day (0 = 24 h)
	rng       *rand.Rand
	tNoise    float64
	rhNoise   float64
	lastTempC float64
}

// NewClimate returns a climate with the report-like defaults filled in where zero.
func NewClimate(rng *rand.Rand, baseC, ampC, baseRH float64, day time.Duration) *Climate {
	return &Climate{BaseC: baseC, AmpC: ampC, NoiseC: 0.15, BaseRH: baseRH, RHPerC: 2.5, NoiseRH: 0.6, Day: day, rng: rng}
}

// Next returns the temperature (°C) and relative humidity (%, clamped to [5, 100]) at t.
func (c *Climate) Next(t time.Time) (tempC, rh float64) {
	// AR(1) noise: correlated from one reading to the next, like a real room, not white jitter.
	c.tNoise = 0.9*c.tNoise + c.rng.NormFloat64()*c.NoiseC*math.Sqrt(1-0.81)
	c.rhNoise = 0.9*c.rhNoise + c.rng.NormFloat64()*c.NoiseRH*math.Sqrt(1-0.81)
	dev := c.AmpC * Diurnal(t, c.Day)
	tempC = c.BaseC + dev + c.tNoise
	rh = c.BaseRH - c.RHPerC*(tempC-c.BaseC) + c.rhNoise
	rh = min(max(rh, 5), 100)
	c.lastTempC = tempC
	return tempC, rh
}

// ChipTemp is the RP2040's internal sensor: the air temperature plus self-heating, with the ADC's coarse noise
// (the first report: 22.4 °C air, 30.6 °C chip).
type ChipTemp struct {
	SelfHeatC float64
	rng       *rand.Rand
}

// NewChipTemp returns a chip sensor heating selfHeatC above the air.
func NewChipTemp(rng *rand.Rand, selfHeatC float64) *ChipTemp {
	return &ChipTemp{SelfHeatC: selfHeatC, rng: rng}
}

// Next returns the chip temperature for the given air temperature.
func (c *ChipTemp) Next(airC float64) float64 {
	return airC + c.SelfHeatC + c.rng.NormFloat64()*0.47 // one ADC step is about 0.47 °C
}

// Walk is a bounded, mean-reverting random walk (RSSI, SNR, gas resistance).
type Walk struct {
	Value, Mean, Step, Revert, Min, Max float64
	rng                                 *rand.Rand
}

// NewWalk starts a walk at mean.
func NewWalk(rng *rand.Rand, mean, step, revert, lo, hi float64) *Walk {
	return &Walk{Value: mean, Mean: mean, Step: step, Revert: revert, Min: lo, Max: hi, rng: rng}
}

// Next moves the walk one step and returns the new value, always within [Min, Max].
func (w *Walk) Next() float64 {
	w.Value += w.Revert*(w.Mean-w.Value) + w.rng.NormFloat64()*w.Step
	w.Value = min(max(w.Value, w.Min), w.Max)
	return w.Value
}

// Gas is a BME680 gas resistance (Ω): a slow drift of the baseline (sensor burn-in, air quality over the day)
// with a mean-reverting walk on top, within 50–200 kΩ (the second report: 101 kΩ, "good air quality").
type Gas struct {
	walk  *Walk
	drift float64 // Ω per reading, added to the walk's mean
}

// NewGas returns a gas-resistance generator around baseOhm.
func NewGas(rng *rand.Rand, baseOhm float64) *Gas {
	return &Gas{walk: NewWalk(rng, baseOhm, 400, 0.02, 50_000, 200_000), drift: (rng.Float64() - 0.5) * 40}
}

// Next returns the next resistance in Ω.
func (g *Gas) Next() float64 {
	g.walk.Mean = min(max(g.walk.Mean+g.drift, 60_000), 190_000)
	if g.walk.Mean <= 60_000 || g.walk.Mean >= 190_000 {
		g.drift = -g.drift
	}
	return g.walk.Next()
}

// Link models the LoRa gateway's radio statistics: RSSI (dBm) and SNR (dB) random walks, and the monotonic
// packets-received and CRC-error counters.
type Link struct {
	RSSI, SNR *Walk
	CRCProb   float64 // probability that one received packet fails its CRC
	Packets   uint64
	CRCErrors uint64
	rng       *rand.Rand
}

// NewLink returns a link with the second report's values: RSSI around -39 dBm, SNR around 11 dB, rare CRC errors.
func NewLink(rng *rand.Rand) *Link {
	return &Link{
		RSSI:    NewWalk(rng, -39, 1.5, 0.05, -120, -30),
		SNR:     NewWalk(rng, 11, 0.6, 0.05, -20, 15),
		CRCProb: 0.005,
		rng:     rng,
	}
}

// Receive accounts for n packets received in one interval and returns the counters and current RSSI/SNR.
// Weak signal (low SNR) makes CRC errors more likely.
func (l *Link) Receive(n int) (packets, crcErrors uint64, rssi, snr float64) {
	rssi, snr = l.RSSI.Next(), l.SNR.Next()
	p := l.CRCProb
	if snr < 0 {
		p *= 10
	}
	for range n {
		l.Packets++
		if l.rng.Float64() < p {
			l.CRCErrors++
		}
	}
	return l.Packets, l.CRCErrors, rssi, snr
}
