/* profile_guard--1.0.sql — assembled by the Makefile from sql/ext/*.sql */

\echo Use "CREATE EXTENSION profile_guard" to load this file. \quit
