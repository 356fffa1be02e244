package main

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// percentiles are the points plotted for each scenario.
var percentiles = []struct {
	p     float64
	label string
}{{50, "p50"}, {90, "p90"}, {99, "p99"}, {99.9, "p99.9"}}

// plotLatencies draws each scenario's latency percentiles on a log scale
// (the -sweep runs aside). Warden's scenarios are drawn in solid lines,
// OPA's dashed, the floor's dotted.
func plotLatencies(path string, done []scenario) error {
	p := plot.New()
	p.Title.Text = "Check latency over loopback HTTP (lower is better)"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks []plot.Tick
	for i, pc := range percentiles {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: pc.label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.2, float64(len(percentiles)-1)+0.2
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	top := 0.0
	i := -1
	for _, s := range done {
		if s.sweep {
			continue
		}
		i++
		pts := make(plotter.XYs, len(percentiles))
		for j, pc := range percentiles {
			pts[j] = plotter.XY{X: float64(j), Y: max(float64(s.res.Percentile(pc.p))/float64(time.Millisecond), 1e-3)}
			top = max(top, pts[j].Y)
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		line.Color, line.Width = c, vg.Points(1.5)
		points.Color, points.Shape, points.Radius = c, shapes[i%len(shapes)], vg.Points(3)
		switch s.server {
		case "OPA":
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		case "floor":
			line.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		}
		p.Add(line, points)
		var label string
		if s.rate > 0 {
			label = fmt.Sprintf("%s (%s/s)", s.name, thousands(s.rate))
		} else {
			label = fmt.Sprintf("%s (max %s/s)", s.name, thousands(s.res.Throughput()))
		}
		p.Legend.Add(label, line, points)
	}
	// Room above the highest point for the legend.
	p.Y.Max = top * 20
	return p.Save(9*vg.Inch, 6.5*vg.Inch, path)
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	color.RGBA{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
}
